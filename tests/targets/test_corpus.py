"""The op corpus (op_corpus.py) on every CPU target, compared with numpy.

x86 levels run natively; aarch64-neon, aarch64-sve (two vector lengths), riscv64-rvv (two
VLENs) under qemu-user; wasm32-simd128 in wasmtime; metal in the MSL harness (its float64
parts in float32: the target declares the dtypes it holds, op_corpus.cases_for). Each
case is one compiled module and one emulator run per target; the module is built once per
target and reused across vector lengths (the code is fixed-length; the emulated length is
read at run time).
"""
from __future__ import annotations

import pytest

import torsh_jit as tj
from torsh_jit.backends import backend_for

from op_corpus import CASES, cases_for, check, flush_subnormals, reference
from target_configs import configs

_kernels: dict = {}


def kernel_for(case, target):
    k = _kernels.get((case.name, target))
    if k is None:
        k = _kernels[(case.name, target)] = tj.kernel(case.fn(tj)).to(target)
    return k


def _pairs():
    """(case, target config) for every config and the cases its target's dtypes hold."""
    out = []
    for cfg in configs():
        name = cfg.values[0][0]
        for case in cases_for(tj.parse_target(name).dtypes):
            out.append(pytest.param(case, cfg.values[0], id=f"{cfg.id}-{case.name}"))
    return out


@pytest.mark.parametrize("case,target_config", _pairs(), indirect=["target_config"])
def test_corpus(case, target_config, rng):
    name, env = target_config
    args = case.make(rng)
    got = kernel_for(case, name)(*args)
    t = tj.parse_target(name)
    flushes = backend_for(t).flushes_subnormals(t)
    # a device that flushes subnormals (NVIDIA's Vulkan driver) may read subnormal inputs as
    # zeros: numpy's answer for those arguments is accepted too (the README lists this)
    check(case, got, reference(case.fn, args), flushes=flushes,
          flushed=reference(case.fn, flush_subnormals(args)) if flushes else None)


def test_corpus_uses_every_op_of_the_op_table(rng):
    """Traced, the corpus holds every op the op table defines (so a new op joins it). mean is
    recorded as sum / count (ir/graph.py), so it appears as those."""
    from torsh_jit.ir.ops import OPS
    from torsh_jit.ir.tracer import spec_of, trace
    seen = set()
    for case in CASES:
        args = case.make(rng)
        g, _ = trace(case.fn(tj), tuple(spec_of(a, index=i) for i, a in enumerate(args)))
        seen |= {n.op for n in g.nodes}
    # a symbolic size as a value (a mean's count over a symbolic axis) is traced from
    # symbolic shapes only: the dynamic corpus, which every target runs, holds it
    from dynamic_corpus import CASES as DYNAMIC
    from torsh_jit.ir.symbols import ShapeEnv
    from torsh_jit.runtime.dynamic import symbolic_specs
    for name, body, _, make in DYNAMIC:
        args = make(rng, 7)
        specs = symbolic_specs(tuple(spec_of(a, index=i) for i, a in enumerate(args)), True)
        with ShapeEnv().active():
            g, _ = trace(body, specs)
        seen |= {n.op for n in g.nodes}
    lacking = set(OPS) - seen - {"mean"}
    assert not lacking, f"the corpora lack {sorted(lacking)}"
