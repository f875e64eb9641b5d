"""The Metal target on Linux: the MSL shim and the harness that runs threadgroups on OS threads.

The op corpus runs on metal in tests/targets/test_corpus.py; these check what it cannot:
that the shim refuses MSL it does not map (so the templates cannot drift from it unseen),
that threadgroup memory, barriers and SIMD-group shuffles behave as on a GPU, and that
float64, which Metal lacks, is refused with a hint. Needs clang++ (the target's runner).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit import errors as E
from torsh_jit.codegen.cstyle.launch import Launch
from torsh_jit.codegen.msl import LANG
from torsh_jit.backends.runners import msl, scratch_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))
from target_configs import require_target  # noqa: E402


@pytest.fixture(autouse=True)
def _metal_runs_here():
    require_target("metal")


def _run(source: str, launches, inputs, outputs):
    """Compile handwritten MSL with the harness and run it over the arrays (outputs filled)."""
    entry = f"tj_test_{abs(hash(source)) % 10**12}"
    exe = msl.compile_exe(source + msl.thunks(launches, entry), entry, "metal", scratch_dir())
    plan = SimpleNamespace(target=tj.parse_target("metal"), symbols=(), part=SimpleNamespace(
        buffers=SimpleNamespace(n_inputs=len(inputs), outputs=[(o.shape, o.dtype) for o in outputs])))
    msl.MslHarnessFunction(plan, exe, entry).run(tuple(inputs) + tuple(outputs))


SHARED = """#include <metal_stdlib>
using namespace metal;
kernel void exchange(const device int* b0 [[buffer(0)]], device int* b1 [[buffer(1)]],
                     device int* b2 [[buffer(2)]], device int* b3 [[buffer(3)]],
                     uint tid [[thread_position_in_threadgroup]],
                     uint gid [[threadgroup_position_in_grid]],
                     uint ngroups [[threadgroups_per_grid]]) {
  threadgroup int sh[64];
  for (uint g = gid; g < 6; g += ngroups) {
    const int x = b0[g * 64 + tid];
    sh[tid] = x;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    int s = 0;
    for (int i = 0; i < 64; ++i) s += sh[i];
    b1[g * 64 + tid] = s;                          // every thread sees its group's 64 values
    b2[g * 64 + tid] = sh[63 - tid];
    b3[g * 64 + tid] = simd_shuffle_xor(x, (ushort)5);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}
"""


def test_threads_of_a_threadgroup_share_its_memory_meet_at_barriers_and_shuffle(rng):
    """Six threadgroups of 64 OS threads: sums through threadgroup memory see exactly the
    group's values (shared by its threads, not by another group), reversed reads see the
    other threads' writes (the barrier), and simd_shuffle_xor reads lane ^ 5 of its own
    SIMD-group of 32."""
    x = rng.integers(-1000, 1000, 6 * 64).astype(np.int32)
    outs = [np.zeros(6 * 64, np.int32) for _ in range(3)]
    params = tuple((b, "ptr", "int32") for b in range(4))
    _run(SHARED, [Launch("exchange", "reduce", 64, params, ("rows", 6))], [x], outs)
    g = x.reshape(6, 64)
    np.testing.assert_array_equal(outs[0].reshape(6, 64), np.repeat(g.sum(1, keepdims=True), 64, 1))
    np.testing.assert_array_equal(outs[1].reshape(6, 64), g[:, ::-1])
    lanes = np.arange(64)
    partner = (lanes & ~31) | ((lanes & 31) ^ 5)
    np.testing.assert_array_equal(outs[2].reshape(6, 64), g[:, partner])


def test_generated_msl_using_a_builtin_the_shim_lacks_fails_to_compile(monkeypatch, rng):
    """sinpi is MSL, but no template uses it, so the shim does not map it: code that calls
    it is refused at compile time with clang's message, not run with some other meaning."""
    monkeypatch.setenv("TORSH_JIT_CACHE", "0")
    monkeypatch.setattr(LANG, "code_for_op", {**LANG.code_for_op, "exp": {"f": "sinpi({a})"}})
    f = tj.kernel(lambda x: tj.exp(x) * 1.0625 - 0.1875, target="metal")
    x = rng.standard_normal(50).astype(np.float32)
    assert "sinpi(" in f.lower(x).source
    with pytest.raises(E.CompileError) as err:
        f(x)
    text = str(err.value)
    assert "sinpi" in text and "undeclared identifier" in text
    assert "shim" in text and err.value.hint and "metal_stdlib" in err.value.hint


def test_an_attribute_the_shim_lacks_fails_to_compile():
    src = SHARED.replace("[[threadgroups_per_grid]]", "[[threads_per_simdgroup]]")
    params = tuple((b, "ptr", "int32") for b in range(4))
    with pytest.raises(E.CompileError, match="threads_per_simdgroup"):
        _run(src, [Launch("exchange", "reduce", 64, params, ("rows", 6))],
             [np.zeros(384, np.int32)], [np.zeros(384, np.int32) for _ in range(3)])


def test_shim_names_only_what_the_templates_use():
    """Every metal:: function the shim maps is spelled by the MSL op table or prelude."""
    import re
    shim = (Path(msl.SHIM_DIR) / "metal_stdlib").read_text()
    mapped = set(re.findall(r"inline float (\w+)\(", shim))
    from torsh_jit.target import data_dir
    prelude = (data_dir("templates") / "msl" / "prelude.metal.j2").read_text()
    spelled = " ".join(v for d in LANG.code_for_op.values() for v in d.values()) + \
        " ".join(v for d in LANG.reductions.values() for _, v in d.values()) + \
        " ".join(LANG.muladd.values()) + prelude
    unused = sorted(fn for fn in mapped if not re.search(rf"\b{fn}(\{{F\}})?\(", spelled))
    assert not unused, f"the shim maps {unused}, which nothing generated uses"


def test_float64_is_refused_with_a_hint(rng):
    f = tj.kernel(lambda x: x * 2, target="metal")
    with pytest.raises(E.DTypeError) as err:
        f(rng.standard_normal(8))
    assert "float64" in str(err.value) and "float32" in err.value.hint
    mean = tj.kernel(lambda m: m.mean(axis=-1), target="metal")     # int32 mean is float64
    with pytest.raises(E.DTypeError) as err:
        mean(np.arange(12, dtype=np.int32).reshape(3, 4))
    assert "float64" in str(err.value) and "CPU target" in err.value.hint


def test_python_floats_meet_float32_as_numpy_does(rng):
    """A Python float is weak (NEP 50): x * 0.1 rounds 0.1 to float32 first, as numpy does."""
    x = rng.standard_normal(300).astype(np.float32)
    got = tj.kernel(lambda x, s: x * s + 0.1, target="metal")(x, 1.0 / 3.0)
    np.testing.assert_array_equal(got, x * (1.0 / 3.0) + 0.1)


def test_python_floats_compare_with_ints_exactly(rng):
    """numpy compares x_int32 with 16777216.5 in float64; Metal has no double, and float would
    round both sides (16777217 > 16777216.5 came out false): compared by value instead."""
    x = rng.integers(-2**31, 2**31, 513, dtype=np.int64).astype(np.int32)
    x[:6] = [16777216, 16777217, -16777217, 2**31 - 1, -2**31, 0]
    b = rng.random(513) < 0.5

    def f(x, b):
        return (x > 16777216.5, x == 16777217.0, x < 2147483647.5, x >= -2147483648.5,
                x != np.nan, b >= 1e-50, b < 1 - 1e-10, b == 1, x < 2**31)
    got = tj.kernel(f, target="metal")(x, b)
    for g, w in zip(got, f(x, b)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_int_array_against_a_python_float_argument_is_a_clear_error():
    k = tj.kernel(lambda x, s: x > s, target="metal")
    with pytest.raises(E.DTypeError) as err:
        k(np.arange(8, dtype=np.int32), 0.5)
    assert "float64" in str(err.value) and "constant" in err.value.hint


def test_explain_shows_the_msl_and_its_dispatch():
    r = subprocess.run([sys.executable, "-m", "torsh_jit.cli", "explain", "examples/softmax.py:softmax",
                        "--arg", "f32[4,4096]", "--target", "metal"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2], check=True)
    out = r.stdout
    assert "#include <metal_stdlib>" in out and "kernel void" in out
    assert "threadgroup_barrier(mem_flags::mem_threadgroup)" in out and "tj_shfl_xor(" in out
    assert "256 threads/threadgroup" in out and "threadgroup(s) x 256 threads" in out
