"""The emitted assembly of elementwise, reduction and matmul kernels uses each target's
vector instructions, and the vector math is not scalarised into libm calls.

Assembly needs only LLVM (every backend is in llvmlite), so these run on any machine.
SVE: the target is fixed-length 128-bit (see targets/aarch64-sve.toml), so arithmetic
stays in NEON v registers and SVE z registers with predicates carry what NEON lacks, the
predicated loop tails; the checks use sizes with tails, as most sizes are.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import torsh_jit as tj


def chain(a, b, c):
    return np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)


def row_sum(x):
    return x.sum(axis=-1)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def linear_relu(x, w, b):
    return np.maximum(x @ w + b, 0)


f32 = np.float32
KERNELS = {
    "elementwise": (chain, (np.zeros(1003, f32),) * 3),
    "reduction": (row_sum, (np.zeros((64, 1003), f32),)),
    "softmax": (softmax, (np.zeros((64, 1003), f32),)),
    "matmul": (linear_relu, (np.zeros((67, 61), f32), np.zeros((61, 45), f32), np.zeros(45, f32))),
}

NEON_FMLA = r"\bfmla\s+v\d+\.4s"
SVE = [r"\bz\d+\.s\b", r"\bp\d+/[zm]\b"]          # z registers, governing predicates
# target -> kernel -> patterns that must all occur
CHECKS = {
    "aarch64-neon": {
        "elementwise": [NEON_FMLA, r"\bfmul\s+v\d+\.4s"],
        "reduction": [r"\bfadd\s+v\d+\.4s", r"\bfaddp\b"],
        "softmax": [NEON_FMLA, r"\bfmax\s+v\d+\.4s", r"\bfdiv\s+v\d+\.4s"],
        "matmul": [NEON_FMLA],
    },
    "aarch64-sve": {
        "elementwise": [NEON_FMLA] + SVE,
        "reduction": [r"\bfadd\s+v\d+\.4s", r"\bld1w\s+\{\s*z\d+\.s\s*\}"] + SVE,
        "softmax": [NEON_FMLA] + SVE,
        "matmul": [NEON_FMLA, r"\bst1w\s+\{\s*z\d+\.s\s*\}"] + SVE,
    },
    "riscv64-rvv": {
        "elementwise": [r"\bvle32\.v\b", r"\bvse32\.v\b", r"\bvf(macc|madd)\.v[vf]\b"],
        "reduction": [r"\bvle32\.v\b", r"\bvfadd\.vv\b", r"\bvfred[ou]sum\.vs\b"],
        "softmax": [r"\bvle32\.v\b", r"\bvfmax\.vv\b", r"\bvfredmax\.vs\b"],
        "matmul": [r"\bvle32\.v\b", r"\bvfmacc\.v[vf]\b"],
    },
    "wasm32-simd128": {
        "elementwise": [r"\bv128\.load\b", r"\bf32x4\.mul\b", r"\bf32x4\.add\b"],
        "reduction": [r"\bv128\.load\b", r"\bf32x4\.add\b"],
        "softmax": [r"\bf32x4\.max\b", r"\bf32x4\.div\b"],
        "matmul": [r"\bv128\.load\b", r"\bf32x4\.mul\b", r"\bf32x4\.add\b"],
    },
}
# scalar libm calls the vector math exists to avoid
SCALAR_LIBM = re.compile(r"\b(call|bl|jal|tail|b)\s+(expf|sinf|cosf|tanhf|logf|fmaf)\b")

_asm: dict = {}


def assembly(target, kind):
    if (target, kind) not in _asm:
        fn, args = KERNELS[kind]
        _asm[(target, kind)] = tj.kernel(fn).lower(*args, target=target).asm()
    return _asm[(target, kind)]


@pytest.mark.parametrize("kind", KERNELS)
@pytest.mark.parametrize("target", CHECKS)
def test_vector_instructions(target, kind):
    asm = assembly(target, kind)
    missing = [p for p in CHECKS[target][kind] if not re.search(p, asm)]
    assert not missing, f"{target} {kind}: no match for {missing} in the assembly"
    calls = SCALAR_LIBM.findall(asm)
    assert not calls, f"{target} {kind}: scalar libm calls {sorted(set(c[1] for c in calls))}"


def test_every_emulated_target_is_checked():
    """A new target file with a runner gets instruction checks too."""
    emulated = {n for n, t in tj.known_targets().items() if t.language == "llvm" and t.runner != "native"}
    assert emulated <= set(CHECKS), f"add instruction checks for {sorted(emulated - set(CHECKS))}"
