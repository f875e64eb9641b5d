"""Kernels over every layout (issue 18): transposed, Fortran-order, strided and broadcast
inputs, column-form row reductions whose stores are scattered, small constant strides read
as one contiguous load and a shuffle, and matmul panels sized to N. Fresh random data each
run; sizes on either side of the vector width, 0 and 1 included."""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.schedule.layout import plan_axes


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


@pytest.fixture
def fresh():
    return np.random.default_rng()


def views(fresh, n, m, dtype):
    """(name, array of shape (n, m)) in several layouts."""
    def r(*s):
        return fresh.standard_normal(s).astype(dtype)
    return [("C", r(n, m)), ("T", r(m, n).T), ("F", np.asfortranarray(r(n, m))),
            ("step2", r(n, 2 * m + 1)[:, 1::2]), ("step3", r(n, 3 * m)[:, ::3]),
            ("step4-rows2", r(2 * n, 4 * m)[::2, ::4]), ("negative", r(n, m)[:, ::-1])]


SHAPES = [(1, 1), (3, 1), (1, 17), (5, 16), (33, 31), (70, 129), (257, 40)]


@pytest.mark.parametrize("n,m", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_layernorm_any_layout(n, m, dtype, fresh):
    tol = 2e-5 if dtype == np.float32 else 1e-11
    ks, kl = tj.kernel(softmax), tj.kernel(layernorm)
    w, b = fresh.standard_normal(m).astype(dtype), fresh.standard_normal(m).astype(dtype)
    for name, x in views(fresh, n, m, dtype):
        np.testing.assert_allclose(ks(x), softmax(x), rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_allclose(kl(x, w, b), layernorm(x, w, b), rtol=tol * 10, atol=tol * 10,
                                   err_msg=name)


@pytest.mark.parametrize("n,m", SHAPES + [(0, 5), (4, 0)])
def test_elementwise_and_reductions_any_layout(n, m, fresh):
    fns = [lambda a, b: a + b, lambda a, b: np.exp(a) * b - a,
           lambda a, b: (a * b).sum(axis=0), lambda a, b: (a * b).sum(axis=-1),
           lambda a, b: np.maximum(a, b).max(axis=0) if a.shape[0] else a.sum(axis=0)]
    for f in fns:
        k = tj.kernel(f)
        for (na, a), (nb, b) in zip(views(fresh, n, m, np.float32), views(fresh, n, m, np.float32)[::-1]):
            np.testing.assert_allclose(k(a, b), f(a, b), rtol=3e-5, atol=3e-4, err_msg=f"{na} {nb}")


def test_transposed_softmax_reads_rows_in_column_form(fresh):
    x = fresh.standard_normal((300, 200)).astype(np.float32).T
    low = tj.kernel(softmax).lower(x)
    (g,) = low.groups
    assert plan_axes(g, columns=True).column
    assert "column reduce" in low.source


@pytest.mark.parametrize("step", [2, 3, 4])
def test_small_strides_load_contiguously_and_shuffle(step, fresh):
    # the last vector of the last row ends exactly at the buffer's last element: a load
    # past the span would read outside the array
    x = fresh.standard_normal((3, 16 * step * 4 - step + 1)).astype(np.float32)
    v = x[:, ::step]
    k = tj.kernel(lambda a: a * 2.0 + 1.0)
    low = k.lower(v)
    assert "shufflevector" in low.source and "gather" not in low.asm()
    np.testing.assert_array_equal(k(v), v * 2.0 + 1.0)


def test_column_prefetch_past_the_end_is_harmless(fresh):
    # the prefetch runs 8 rows ahead of the last row: addresses past the buffer are hints
    for rows in (1, 7, 8, 9, 4099):
        x = fresh.standard_normal((rows, 300)).astype(np.float32)
        np.testing.assert_allclose(tj.kernel(lambda a: a.sum(axis=0))(x), x.sum(axis=0),
                                   rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("bt,m,k,n", [(3, 1, 1, 1), (5, 7, 3, 16), (4, 16, 16, 17), (2, 9, 33, 31),
                                      (64, 8, 8, 8), (2, 37, 5, 197), (1, 0, 4, 5), (3, 4, 0, 6)])
def test_batched_matmul_panels_sized_to_n(bt, m, k, n, fresh):
    for dt, tol in ((np.float32, 1e-4), (np.float64, 1e-11)):
        A = fresh.standard_normal((bt, m, k)).astype(dt)
        B = fresh.standard_normal((bt, k, n)).astype(dt)
        c = fresh.standard_normal(n).astype(dt)
        f = tj.kernel(lambda a, b, c: np.maximum(a @ b + c, 0))
        np.testing.assert_allclose(f(A, B, c), np.maximum(A @ B + c, 0), rtol=tol, atol=tol)
        # a transposed operand and a broadcast one
        f2 = tj.kernel(lambda a, b: a @ b)
        Bt = fresh.standard_normal((bt, n, k)).astype(dt).transpose(0, 2, 1)
        np.testing.assert_allclose(f2(A, Bt), A @ Bt, rtol=tol, atol=tol)
        np.testing.assert_allclose(f2(A, B[0]), A @ B[0], rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,axis", [((3, 4, 16), (0, 2)), ((5, 7, 33), (0, 2)), ((2, 3, 4, 17), (0, 2, 3)),
                                        ((9, 1, 40), (0, 2)), ((4, 6, 15), (0, 2)), ((6, 5, 64), (0, 2))])
def test_segmented_row_reductions(shape, axis, fresh):
    """Reduced axes that do not merge into one run: segments of the contiguous last run
    (15: shorter than a vector, the gathered path)."""
    x = fresh.standard_normal(shape).astype(np.float32)
    w = fresh.standard_normal(shape[-1]).astype(np.float32)
    for f in (lambda a, w: a.sum(axis=axis), lambda a, w: (a * a).max(axis=axis),
              lambda a, w: a.mean(axis=axis, keepdims=True), lambda a, w: (a * w).min(axis=axis)):
        k = tj.kernel(f)
        np.testing.assert_allclose(k(x, w), f(x, w), rtol=2e-5, atol=2e-5)
    (grp,) = tj.kernel(lambda a: a.sum(axis=axis)).lower(x).groups
    assert bool(plan_axes(grp, columns=True).segs) == (shape[-1] >= 16 and shape[1] > 1)
    # a row-level value broadcast back over the row stores inside it: not segmented
    g = tj.kernel(lambda a: a - a.mean(axis=axis, keepdims=True))
    np.testing.assert_allclose(g(x), x - x.mean(axis=axis, keepdims=True), rtol=2e-5, atol=2e-5)
    y = x.transpose(1, 0, *range(2, x.ndim))
    np.testing.assert_allclose(tj.kernel(lambda a: a.sum(axis=(1, -1)))(y), y.sum(axis=(1, -1)),
                               rtol=2e-5, atol=2e-5)
