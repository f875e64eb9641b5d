"""The public API of DESIGN.md: decorator forms, lower, to, out=, Graph builder, tj.compile."""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.errors import ArgumentError


def test_decorator_forms(rng):
    @tj.kernel
    def f(x):
        return x * 2 + 1

    @tj.kernel(target="x86_64-sse42")
    def g(x):
        return x * 2 + 1

    x = rng.standard_normal(37).astype(np.float32)
    np.testing.assert_array_equal(f(x), x * np.float32(2) + np.float32(1))
    np.testing.assert_array_equal(g(x), x * np.float32(2) + np.float32(1))
    assert g.target.name == "x86_64-sse42"


def test_lower_source_is_one_module_with_every_kernel(rng):
    def two(x, y):
        s = (x * y).sum(axis=0)          # a reduction over axis 0 ...
        return s, (x + 1).sum(axis=1)    # ... and one over axis 1: two kernels
    x = rng.standard_normal((5, 7)).astype(np.float32)
    low = tj.kernel(two).lower(x, x)
    assert low.n_kernels == 2
    for name in low.plan.kernel_names():
        assert f"define void @{name}(" in low.source
    assert low.source.count("target triple") == 1


def test_to_runs_the_same_kernel_on_another_target(rng):
    k = tj.kernel(lambda x: np.exp(x) - 1)
    x = rng.standard_normal(1001).astype(np.float32)
    for t in tj.available_targets():
        # exp is within a few ulp; the -1 cancels, so the bound is absolute near 0
        np.testing.assert_allclose(k.to(t)(x), np.exp(x) - 1, rtol=1e-6, atol=5e-7)


def test_out_writes_into_given_arrays(rng):
    k = tj.kernel(lambda a, b: (a + b, a * b))
    a, b = (rng.standard_normal((4, 9)) for _ in range(2))
    o1, o2 = np.empty((4, 9)), np.empty((4, 9))
    r = k(a, b, out=(o1, o2))
    assert r[0] is o1 and r[1] is o2
    np.testing.assert_array_equal(o1, a + b)
    np.testing.assert_array_equal(o2, a * b)
    # numpy's ufuncs cast into out= under 'same_kind': float64 into float32 is taken
    f = np.empty((4, 9), np.float32)
    k(a, b, out=(f, o2))
    np.testing.assert_array_equal(f, (a + b).astype(np.float32))
    with pytest.raises(ArgumentError, match=r"out\[0\] has dtype int32"):
        k(a, b, out=(np.empty((4, 9), np.int32), o2))
    with pytest.raises(ArgumentError, match="returns 2"):
        k(a, b, out=o1)


def test_graph_builder_and_compile(rng):
    g = tj.Graph()
    x = g.input((64, 33), "float32")
    b = g.input((33,), "float32")
    g.output(tj.relu(x + b), (x * x).sum(axis=1))
    fn = tj.compile(g, target="host")
    xa = rng.standard_normal((64, 33)).astype(np.float32)
    ba = rng.standard_normal(33).astype(np.float32)
    r1, r2 = fn(xa, ba)
    np.testing.assert_array_equal(r1, np.maximum(xa + ba, 0))
    np.testing.assert_allclose(r2, (xa * xa).sum(axis=1), rtol=1e-5)
    assert "define void" in fn.source
    with pytest.raises(ArgumentError, match="expected float32\\[64,33\\]"):
        fn(xa.astype(np.float64), ba)


def test_scalar_arguments_are_runtime_values(rng):
    k = tj.kernel(lambda x, s, t: x * s + t)
    x = rng.standard_normal(10).astype(np.float32)
    for s, t in [(2.0, 1), (np.float32(0.5), np.int32(3)), (np.array(1.5), -1.0)]:
        np.testing.assert_allclose(k(x, s, t), x * s + t, rtol=1e-6)
        assert k(x, s, t).dtype == (x * s + t).dtype


def test_zero_d_result_is_a_numpy_scalar(rng):
    x = rng.standard_normal(100)
    r = tj.kernel(lambda x: x.sum())(x)
    assert np.ndim(r) == 0
    np.testing.assert_allclose(r, x.sum(), rtol=1e-12)


def test_large_inputs_use_threads_and_agree(rng):
    x = rng.standard_normal(3_000_001).astype(np.float32)
    y = rng.standard_normal((2049, 1031)).astype(np.float32)
    np.testing.assert_allclose(tj.kernel(lambda a: a * 3 - 1)(x), x * np.float32(3) - 1, rtol=1e-6)
    np.testing.assert_allclose(tj.kernel(lambda a: a.max(axis=1))(y), y.max(axis=1))


# -- out= that overlaps an input, and ndarray subclasses ----------------------------------------
@pytest.mark.parametrize("fn", [lambda x: x.T + 1, lambda x: x[::-1, :] * 2,
                                lambda x: x - x.sum(axis=1, keepdims=True),
                                lambda x: x @ x, lambda x: np.exp(x) + x.T])
def test_out_overlapping_an_input_gives_numpys_result(fn, rng):
    """numpy computes as if the inputs were copied first when out= overlaps them."""
    x = rng.standard_normal((6, 6))
    want = fn(x.copy())
    got = tj.kernel(fn)(x, out=x)
    assert got is x
    np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)


def test_out_that_is_the_input_itself_elementwise_stays_in_place(rng):
    x = rng.standard_normal(1000)
    want = x * 2 + 1
    k = tj.kernel(lambda x: x * 2 + 1)
    assert k(x, out=x) is x
    np.testing.assert_allclose(x, want)
    buf = rng.standard_normal(2000)
    a, o = buf[:1000], buf[500:1500]               # partial overlap: must not run in place
    want = a * 2 + 1
    k(a, out=o)
    np.testing.assert_allclose(o, want)


@pytest.mark.parametrize("make,fix", [(lambda v: np.matrix(v.reshape(2, 3)), "np.asarray"),
                                      (lambda v: np.ma.array(v, mask=v > 0), "filled")])
def test_array_subclasses_that_change_arithmetic_are_refused(make, fix, rng):
    v = rng.standard_normal(6)
    with pytest.raises(tj.ArgumentError, match=fix):
        tj.kernel(lambda x: x * x)(make(v))


def test_plain_ndarray_subclasses_are_read_as_numpy_reads_them(tmp_path, rng):
    mm = np.memmap(tmp_path / "m.bin", dtype=np.float32, mode="w+", shape=(7, 5))
    mm[:] = rng.standard_normal((7, 5))
    np.testing.assert_allclose(tj.kernel(lambda x: x * 2 + x.sum(axis=0))(mm),
                               np.asarray(mm) * 2 + np.asarray(mm).sum(axis=0), rtol=1e-6)


def test_what_is_not_a_function_fails_at_decoration():
    with pytest.raises(tj.ArgumentError, match="takes a Python function") as e:
        tj.kernel(42)
    assert "test_api.py" in str(e.value)
    k = tj.kernel(lambda x: x * 2)
    with pytest.raises(tj.ArgumentError, match="already a torsh-jit kernel"):
        tj.kernel(k)


def test_a_kernel_called_inside_a_kernel_says_kernels_do_not_nest(rng):
    inner = tj.kernel(lambda x: x * 2)
    with pytest.raises(tj.TraceError, match="do not nest"):
        tj.kernel(lambda x: inner(x) + 1)(rng.standard_normal(4))
    x = rng.standard_normal(4)
    np.testing.assert_allclose(tj.kernel(lambda x: inner.fn(x) + 1)(x), x * 2 + 1)


def test_a_python_int_beyond_int64_is_refused_clearly(rng):
    x = rng.integers(-9, 9, 5)
    with pytest.raises(OverflowError):
        x + 2**70
    with pytest.raises(tj.ArgumentError, match="beyond int64") as e:
        tj.kernel(lambda x, n: x + n)(x, 2**70)
    assert "float(" in e.value.hint
    np.testing.assert_array_equal(tj.kernel(lambda x, n: x + n)(x, 2**62), x + 2**62)


@pytest.mark.parametrize("value,threads,says", [("abc", None, "not a whole number"),
                                                ("100000", "cap", "more than 4 threads"),
                                                ("0", 1, "below 1")])
def test_bad_num_threads_warns_naming_the_variable(value, threads, says, monkeypatch):
    from torsh_jit.schedule import threads as T
    monkeypatch.setenv("TORSH_JIT_NUM_THREADS", value)
    monkeypatch.setattr(T, "_warned", set())
    with pytest.warns(RuntimeWarning, match=f"TORSH_JIT_NUM_THREADS.*{says}"):
        n = T.num_threads()
    assert n == (T._cpus() if threads is None else 4 * T._cpus() if threads == "cap" else threads)
