"""var and std inside kernels (Tensor methods and np.var / np.std) against numpy.

They are compositions (mean, subtract, square, sum, divide), so the host target checks
numpy's rules: axis forms, keepdims, ddof (and n - ddof <= 0, where numpy gives inf or
nan), and dtypes (integers and bools compute in float64, float32 stays float32).
Expected values come from numpy on fresh random data.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import torsh_jit as tj

SHAPES_AXES = [((37,), None), ((37,), 0), ((37,), -1), ((6, 9), None), ((6, 9), 0),
               ((6, 9), -1), ((6, 9), (0, 1)), ((3, 4, 5), 1), ((3, 4, 5), (0, -1)),
               ((3, 4, 5), (-1, 0, 1)), ((2, 1, 7), 1), ((), None), ((0, 4), 0), ((4, 0), -1),
               ((300, 257), 1), ((300, 257), None)]


def _data(rng, shape, dtype):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind == "i":
        return rng.integers(-1000, 1000, shape).astype(dtype)
    return (rng.standard_normal(shape) * 3 + 5).astype(dtype)


def _check(got, want, dtype, atol=0.0):
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype,
                                                                 got.shape, want.shape)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES, ids=str)
def test_var_and_std_match_numpy(shape, axis, dtype, rng):
    x = _data(rng, shape, dtype)
    ddof = 1 if x.size > 1 else 0
    fns = [lambda x: x.var(axis=axis), lambda x: x.std(axis, ddof=ddof),
           lambda x: np.var(x, axis=axis, ddof=ddof, keepdims=True),
           lambda x: np.std(x, axis=axis, keepdims=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # numpy warns for empty axes (the value is nan)
        wants = [f(x) for f in fns]
    for f, want in zip(fns, wants):
        _check(np.asarray(tj.kernel(f)(x)), np.asarray(want), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_no_degrees_of_freedom_gives_numpy_inf_and_nan(dtype, rng):
    x = _data(rng, (5, 3), dtype)
    x[:, 1] = 3                              # a constant column: 0 / 0 is nan, the others inf
    for ddof in (3, 5, 8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy: "Degrees of freedom <= 0"
            want_v, want_s = np.var(x, axis=1, ddof=ddof), np.std(x, axis=0, ddof=ddof)
        _check(tj.kernel(lambda x: x.var(axis=1, ddof=ddof))(x), want_v, dtype)
        _check(tj.kernel(lambda x: np.std(x, axis=0, ddof=ddof))(x), want_s, dtype)
    assert np.isnan(tj.kernel(lambda x: x.std(axis=0, ddof=5))(x)[1])
    assert np.isinf(tj.kernel(lambda x: x.std(axis=0, ddof=5))(x)[0])


def test_var_options(rng):
    x = rng.standard_normal((8, 5))
    x32 = x.astype(np.float32)
    _check(tj.kernel(lambda x: np.var(x, 0, np.float32))(x), np.var(x.astype(np.float32), 0),
           np.float32)
    _check(tj.kernel(lambda x: x.std(dtype=np.float64))(x32), np.std(x32, dtype=np.float64),
           np.float64)
    _check(tj.kernel(lambda x: np.var(x, axis=1, correction=1))(x), np.var(x, axis=1, ddof=1),
           np.float64)
    _check(tj.kernel(lambda x: x.var(axis=0, ddof=1.5))(x), x.var(axis=0, ddof=1.5), np.float64)
    _check(tj.kernel(lambda x: x.var(-1, ddof=-1))(x), x.var(-1, ddof=-1), np.float64)
    # fused into a larger kernel: a layer norm. An output near zero is x - mean with the
    # mean's rounding in it, so its error is absolute (a few float32 ulps of the unit-scale
    # outputs), not relative to its own tiny value.
    ln = tj.kernel(lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5))
    _check(ln(x32), (x32 - x32.mean(-1, keepdims=True)) / np.sqrt(x32.var(-1, keepdims=True) + 1e-5),
           np.float32, atol=4 * np.finfo(np.float32).eps)


def test_var_errors_say_what_works(rng):
    x = rng.standard_normal((4, 3))
    with pytest.raises(tj.UnsupportedOpError, match="where=") as e:
        tj.kernel(lambda x: np.var(x, where=x > 0))(x)
    assert "test_var_std.py" in str(e.value) and e.value.hint
    with pytest.raises(tj.UnsupportedOpError, match="ddof must be a Python number"):
        tj.kernel(lambda x: x.var(ddof=x.sum()))(x)
    with pytest.raises(tj.DTypeError, match="dtype=int32"):
        tj.kernel(lambda x: x.std(dtype=np.int32))(x)
    with pytest.raises(tj.ShapeError, match="axis 2 is out of bounds"):
        tj.kernel(lambda x: x.var(axis=2))(x)
