"""Differential fuzzing: random array programs (fuzz_programs.py) run by numpy and by
torsh-jit on fresh data every run must agree (fuzz_check.py says how closely).

Profiles and counts: conftest.py. A failure prints the program as a runnable script.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, seed

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "targets"))
import fuzz_check  # noqa: E402
from conftest import fuzz_settings  # noqa: E402
from fuzz_programs import ALL_DTYPES, BIG_SIZES, WGSL_DTYPES, programs  # noqa: E402
from target_configs import require_target  # noqa: E402

SEED = fuzz_check.SEED


@seed(SEED)
@fuzz_settings("host")
@given(programs(target="host"))
def test_host_matches_numpy(prog):
    fuzz_check.check(prog)


@seed(SEED + 1)
@fuzz_settings("host-big")
@given(programs(target="host", big=True, max_stmts=4, allow_errors=False))
def test_host_big_sizes_match_numpy(prog):
    """Sizes past 64k: vector loops with a tail, multi-threaded splits, wide reductions."""
    assert any(s in BIG_SIZES for p in prog.params if hasattr(p, "shape") for s in p.shape)
    fuzz_check.check(prog)


def _emulated(name, dtypes):
    @seed(SEED + 2 + len(name))
    @fuzz_settings(name)
    @given(programs(target=name, dtypes=dtypes, max_stmts=5))
    def run(prog):
        fuzz_check.check(prog)
    return run


_neon = _emulated("aarch64-neon", ALL_DTYPES)
_wgsl = _emulated("wgsl", WGSL_DTYPES)


def test_aarch64_neon_matches_numpy():
    require_target("aarch64-neon")
    _neon()


def test_wgsl_matches_numpy():
    """WGSL has no 64-bit types: programs over bool, int32 and float32 only."""
    require_target("wgsl")
    _wgsl()


def test_the_checker_catches_a_wrong_result(monkeypatch):
    """The fuzzer itself can fail: a kernel returning a perturbed result is reported."""
    import numpy as np
    from fuzz_programs import Input, Program
    prog = Program([Input("x0", (7,), "float32", "C", 3, False)], [("v0", "np.exp(x0) + 1")],
                   ["v0"], False, n_ops=2)
    fuzz_check.check(prog)                       # right as it is
    real = fuzz_check.kernel_for
    monkeypatch.setattr(fuzz_check, "kernel_for",
                        lambda p: (lambda *a, **k: real(p)(*a, **k) * np.float32(1.001)))
    counts = fuzz_check.STATS.copy()
    with pytest.raises(fuzz_check.Mismatch, match="differ"):
        fuzz_check.check(prog)
    fuzz_check.STATS.clear()
    fuzz_check.STATS.update(counts)      # the planted failure is not one of the compiler's
