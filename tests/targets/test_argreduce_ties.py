"""argmax/argmin give numpy's position, the first of equal values, on every CPU target.

Data with many ties (bools, small integers), as the differential fuzzer found them: on
AArch64 LLVM's optimiser made integer and bool argmax/argmin take a later tie's position
(bool argmax of 39 elements gave 37, numpy 1), so those kernels are built unoptimised
there (codegen/llvm/module.py: optimiser_miscompiles).
"""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj
from target_configs import require_target

TARGETS = ["host", "x86_64-sse42", "aarch64-neon", "aarch64-sve", "riscv64-rvv", "wasm32-simd128"]
CASES = [((39,), None), ((3, 13), None), ((3, 13), 1), ((7, 64), 1), ((33, 5), 0), ((2, 3, 17), -1)]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float32"])
def test_first_of_ties_wins(target, dtype, rng):
    if target != "host":
        require_target(target)
    ks = {(op, axis): tj.kernel(lambda x, op=op, axis=axis: getattr(x, op)(axis=axis), target=target)
          for op in ("argmax", "argmin") for _, axis in CASES}
    for shape, axis in CASES:
        x = rng.integers(0, 2 if dtype == "bool" else 3, shape).astype(dtype)
        for op in ("argmax", "argmin"):
            np.testing.assert_array_equal(ks[op, axis](x), getattr(np, op)(x, axis=axis),
                                          err_msg=f"{op} axis={axis} of {dtype}{list(shape)} on {target}")
