"""numpy's semantics where a kernel compiler is tempted to differ: integer round, integer
powers with negative exponents, and products whose partial products leave the float range.

Expected values come from numpy on fresh random data, or, where numpy's own order of
operations loses the value (a sequential product that overflows on the way), from an exact
product computed in mantissa/exponent form.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import torsh_jit as tj

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "targets"))
from target_configs import require_target  # noqa: E402
from numpy_reference import exact_prod, wide_range_rows  # noqa: E402

TARGETS = ["host", "aarch64-neon", "wgsl", "metal"]
NO_FLOAT64 = {"wgsl", "metal"}     # float32 is their widest float


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_round_keeps_integers(dtype, rng):
    x = rng.integers(-1000, 1000, 37).astype(dtype)
    for fn in (lambda x: np.round(x), lambda x: x.round() + 1, lambda x: np.around(x) * 2):
        got, want = tj.kernel(fn)(x), fn(x)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    y = rng.standard_normal(40) * 10
    y[:4] = [0.5, 1.5, -2.5, -0.5]           # halves round to even, -0.5 to -0.0
    got = tj.kernel(lambda y: y.round())(y)
    np.testing.assert_array_equal(got, np.round(y))
    assert np.signbit(got[3])


def test_integer_to_a_negative_power_raises_like_numpy(rng):
    x = rng.integers(1, 9, 12)
    with pytest.raises(ValueError) as np_err:
        x ** -1
    with pytest.raises(tj.DomainError, match="negative integer powers") as e:
        tj.kernel(lambda x: x ** -1)(x)
    assert isinstance(e.value, ValueError) and "test_numpy_semantics.py" in str(e.value)
    assert "negative integer powers" in str(np_err.value)
    k = tj.kernel(lambda x, e: x ** e)
    e_ok = rng.integers(0, 5, 12)
    np.testing.assert_array_equal(k(x, e_ok), x ** e_ok)
    np.testing.assert_array_equal(k(x, 3), x ** 3)
    for bad in (np.where(np.arange(12) == 7, -1, 2), -2, np.int32(-1)):
        with pytest.raises(tj.DomainError, match="argument 1"):
            k(x, bad)
    # float powers are not affected
    xf = x.astype(np.float64)
    np.testing.assert_allclose(tj.kernel(lambda x: x ** -1)(xf), xf ** -1)
    with pytest.raises(tj.UnsupportedOpError, match="computed inside the kernel"):
        tj.kernel(lambda x: x ** (x - 5))(x)


def _float_cases(targets, dtypes=(np.float32, np.float64)):
    """(target, dtype) pairs: float64 only where the target computes in it."""
    return [pytest.param(t, d, id=f"{t}-{np.dtype(d).name}")
            for t in targets for d in dtypes if not (d == np.float64 and t in NO_FLOAT64)]


@pytest.mark.parametrize("target,dtype", _float_cases(TARGETS))
def test_prod_with_a_wide_dynamic_range_is_not_nan(target, dtype, rng):
    """Alternating huge and tiny factors: a product reordered across vector lanes (or GPU
    threads, warps and workgroups) put the huge ones in one partial (inf) and the tiny ones
    in another (0), giving inf * 0 = NaN where numpy's and the exact product are finite."""
    require_target(target)
    x = wide_range_rows(rng, dtype, 6, 64)
    # rows, columns of a C-ordered array (the column-mode reduction), and everything
    f = tj.kernel(lambda x, xt: (x.prod(axis=1), xt.prod(axis=0), x.prod()), target=target)
    want_rows = exact_prod(x, 1).astype(dtype)
    assert np.all(np.isfinite(want_rows))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    got_rows, got_cols, got_all = f(x, np.ascontiguousarray(x.T))
    np.testing.assert_allclose(got_rows, want_rows, rtol=rtol)
    np.testing.assert_allclose(got_cols, want_rows, rtol=rtol)     # column mode
    np.testing.assert_allclose(got_all, exact_prod(x.ravel(), 0).astype(dtype), rtol=rtol)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(got_rows, np.prod(x, axis=1), rtol=rtol)


@pytest.mark.parametrize("target,dtype", _float_cases(TARGETS))
def test_prod_special_values_and_true_overflow(target, dtype, rng):
    require_target(target)
    f = tj.kernel(lambda x: x.prod(axis=-1), target=target)
    x = rng.uniform(0.5, 2, (6, 9))
    x[0, 3], x[1, 2], x[2, 4], x[3, 1], x[3, 7] = 0.0, np.inf, np.nan, np.inf, 0.0
    x[4] = 1e200 if dtype == np.float64 else 1e30   # the true product overflows: inf
    x[5, :3] = [-0.0, -np.inf, 2.0]                    # the signs of zeros and infinities
    x = x.astype(dtype)
    with np.errstate(all="ignore"):
        want = np.prod(x, axis=-1)
    got = f(x)
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 1e-5)
    assert np.isnan(got[3]) and np.isinf(got[4]) and np.isnan(got[5])
    tiny = np.full((2, 40), 1e-20, np.float32)      # the true product underflows: 0
    assert np.all(tj.kernel(lambda t: t.prod(axis=1), target=target)(tiny) == 0)


@pytest.mark.parametrize("target,dtype", _float_cases(TARGETS))
def test_prod_of_subnormals_and_a_subnormal_result(target, dtype, rng):
    """Subnormal factors and products are taken apart exactly (by their bits: a GPU that
    flushes subnormal operands would lose them), and a subnormal result is rounded once."""
    require_target(target)
    fi = np.finfo(dtype)
    tiny = float(fi.smallest_subnormal)
    x = rng.uniform(0.5, 2.0, (4, 33))
    half = 2.0 ** (-np.log2(tiny) / 2)
    x[0, ::3] = tiny * 3                                       # a subnormal and two huge
    x[0, 1::3] *= half
    x[0, 2::3] *= half
    x[1, :] = 1.0
    x[1, 5], x[1, 6] = tiny * 5, 0.75                          # a subnormal result
    x[2, ::3] = float(fi.tiny) / 3                             # subnormal partials
    x[2, 1::3] = 1 / float(fi.tiny)
    x = x.astype(dtype)
    got = tj.kernel(lambda x: x.prod(axis=1), target=target)(x)
    want = exact_prod(x, 1).astype(dtype)
    assert np.all(np.isfinite(want)) and want[1] != 0
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert got[1] == want[1]
