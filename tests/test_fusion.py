"""Fusion: how many kernels a function becomes, and that the fused kernels are right.

Kernel counts come from `f.lower(...).n_kernels`; every result is checked against numpy
on freshly drawn data.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import torsh_jit as tj

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "targets"))
from target_configs import require_target  # noqa: E402

F32 = dict(rtol=2e-5, atol=2e-6)
F64 = dict(rtol=1e-12, atol=1e-13)


def tol(dtype):
    return F32 if np.dtype(dtype) == np.float32 else F64


def close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **tol(dtype))


# -- the functions and their numpy twins ------------------------------------------------------
def chain10(x, y):
    a = x * 1.5 + y            # mul, add
    a = a - 0.25               # sub
    a = np.maximum(a, -2.0)    # maximum
    a = a / (y * y + 1.0)      # mul, add, truediv
    a = np.abs(a) * -a         # abs, neg, mul
    return a


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    s = x - m
    return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


def layernorm(x, w, b, eps=1e-5):
    mu = np.mean(x, axis=-1, keepdims=True)
    d = x - mu
    var = np.mean(d * d, axis=-1, keepdims=True)
    return d / np.sqrt(var + eps) * w + b


def rmsnorm(x, w, eps=1e-6):
    ms = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(ms + eps) * w


def linear_relu(x, w, b):
    return np.maximum(x @ w + b, 0)


def residual(x, w, r):
    return x @ w + r


# -- kernel counts ------------------------------------------------------------------------------
DTYPES = ["float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_chain_is_one_kernel(dtype, rng):
    x = rng.standard_normal((37, 29)).astype(dtype)
    y = rng.standard_normal(29).astype(dtype)
    k = tj.kernel(chain10)
    assert k.lower(x, y).n_kernels == 1
    close(k(x, y), chain10(x, y), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 100), (7, 1031), (3, 5, 33), (1, 1)])
def test_row_softmax_is_one_kernel(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    k = tj.kernel(softmax)
    assert k.lower(x).n_kernels == 1
    close(k(x), softmax(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_is_one_kernel(dtype, rng):
    x = (rng.standard_normal((33, 257)) * 5).astype(dtype)
    k = tj.kernel(log_softmax)
    assert k.lower(x).n_kernels == 1
    close(k(x), log_softmax(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layernorm_is_one_kernel(dtype, rng):
    x = (rng.standard_normal((31, 384)) * 3 + 1).astype(dtype)
    w = rng.standard_normal(384).astype(dtype)
    b = rng.standard_normal(384).astype(dtype)
    k = tj.kernel(layernorm)
    assert k.lower(x, w, b).n_kernels == 1
    close(k(x, w, b), layernorm(x, w, b), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rmsnorm_is_one_kernel(dtype, rng):
    x = (rng.standard_normal((17, 4097)) * 3).astype(dtype)     # a row longer than a block
    w = rng.standard_normal(4097).astype(dtype)
    k = tj.kernel(rmsnorm)
    assert k.lower(x, w).n_kernels == 1
    close(k(x, w), rmsnorm(x, w), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_relu_is_one_kernel(dtype, rng):
    x = rng.standard_normal((65, 130)).astype(dtype)
    w = rng.standard_normal((130, 47)).astype(dtype)
    b = rng.standard_normal(47).astype(dtype)
    k = tj.kernel(linear_relu)
    assert k.lower(x, w, b).n_kernels == 1
    t = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else F64
    np.testing.assert_allclose(k(x, w, b), linear_relu(x, w, b), **t)


def test_residual_add_is_one_kernel(rng):
    x = rng.standard_normal((40, 64)).astype(np.float32)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    r = rng.standard_normal((40, 64)).astype(np.float32)
    k = tj.kernel(residual)
    assert k.lower(x, w, r).n_kernels == 1
    np.testing.assert_allclose(k(x, w, r), residual(x, w, r), rtol=1e-4, atol=1e-4)


# -- correctness across axes -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_over_axis_0(dtype, rng):
    """The reduced axis is the outer (strided) one: still right, still fused."""
    x = (rng.standard_normal((129, 31)) * 4).astype(dtype)
    k = tj.kernel(lambda x: softmax(x, axis=0))
    assert k.lower(x).n_kernels == 1
    close(k(x), softmax(x, axis=0), dtype)
    xt = (rng.standard_normal((31, 129)) * 4).astype(dtype).T      # non-contiguous input
    close(k(xt), softmax(xt, axis=0), dtype)


@pytest.mark.parametrize("first,second", [(1, 0), (0, 1), (2, 0), ((0, 2), 0)], ids=str)
def test_reductions_over_different_axes_are_two_kernels(first, second, rng):
    """A reduction feeding a reduction over another axis cannot share a row loop."""
    x = rng.standard_normal((13, 17, 5)).astype(np.float64)

    def f(x):
        return np.max(np.sum(x, axis=first) * 2, axis=second)
    k = tj.kernel(f)
    assert k.lower(x).n_kernels == 2
    close(k(x), f(x), np.float64)


def test_two_reductions_same_axis_share_a_kernel(rng):
    """mean and variance of the same rows: one kernel, two outputs."""
    x = rng.standard_normal((20, 300)).astype(np.float32)

    def f(x):
        mu = np.mean(x, axis=1, keepdims=True)
        return mu, np.mean((x - mu) ** 2, axis=1)
    k = tj.kernel(f)
    assert k.lower(x).n_kernels == 1
    for g, w in zip(k(x), f(x)):
        close(g, w, np.float32)


def test_shared_intermediate_and_several_outputs(rng):
    """A value used by two outputs is computed once per element; both outputs are right."""
    x = rng.standard_normal((50, 60)).astype(np.float32)
    y = rng.standard_normal((50, 60)).astype(np.float32)

    def f(x, y):
        t = np.tanh(x * y)
        return t + 1, t * x, softmax(t)
    k = tj.kernel(f)
    assert k.lower(x, y).n_kernels == 1
    for g, w in zip(k(x, y), f(x, y)):
        close(g, w, np.float32)


def test_attention_block(rng):
    """softmax(q @ k.T / sqrt(d)) @ v: matmul, fused softmax, matmul, against numpy."""
    q = rng.standard_normal((2, 16, 32)).astype(np.float32)
    kk = rng.standard_normal((2, 24, 32)).astype(np.float32)
    v = rng.standard_normal((2, 24, 8)).astype(np.float32)

    def attn(q, k, v):
        s = q @ np.swapaxes(k, -1, -2) / np.sqrt(np.float32(32))
        return softmax(s) @ v
    k = tj.kernel(attn)
    assert k.lower(q, kk, v).n_kernels <= 3
    np.testing.assert_allclose(k(q, kk, v), attn(q, kk, v), rtol=1e-4, atol=1e-5)


def test_transposed_and_strided_inputs_fuse(rng):
    """Layouts do not break fusion: a transposed input and a reversed slice in one kernel."""
    x = rng.standard_normal((40, 30)).astype(np.float32)
    y = rng.standard_normal((30, 80)).astype(np.float32)

    def f(x, y):
        return softmax(x.T * y[:, ::-2])
    k = tj.kernel(f)
    assert k.lower(x, y).n_kernels == 1
    close(k(x, y), f(x, y), np.float32)


def test_siblings_reading_the_same_input_share_a_kernel(rng):
    """Horizontal fusion: values computed from the same inputs over the same axes."""
    x = rng.standard_normal((64, 33)).astype(np.float32)
    y = rng.standard_normal(33).astype(np.float32)
    cases = [
        (lambda a, b: (a + b, a * b), 1),
        (lambda a, b: (a.sum(axis=1), (a * a).sum(axis=1)), 1),   # layernorm's two moments
        (lambda a, b: (np.exp(a), a.max(axis=1)), 1),
        (lambda a, b: (a + 1, b * 2), 2),              # different inputs and axes: no fusion
        (lambda a, b: (a.sum(axis=0), a.sum(axis=1)), 2),  # different reduced axes
    ]
    for f, n in cases:
        k = tj.kernel(f)
        assert k.lower(x, y).n_kernels == n
        for got, want in zip(k(x, y), f(x, y)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# -- regressions: one value in two roles, values beside a matmul, reductions broadcast ------
def _self_matmul(x):
    return x @ x


def _self_matmul_after_cse(a):
    return (a * 1 + .5) @ (a * 1 + .5)


def _fused_temp_with_its_broadcast(x):
    y = x + 1
    return y[:, None] + y


def _fused_temp_with_its_transpose(m):
    y = m + 2
    return y.T + y


def _input_with_its_broadcast(x):
    return x[:, None] + x


@pytest.mark.parametrize("target", ["host", "aarch64-neon", "wgsl"])
@pytest.mark.parametrize("fn,shape", [(_self_matmul, (2, 2)), (_self_matmul, (17, 17)),
                                      (_self_matmul_after_cse, (9, 9)),
                                      (_fused_temp_with_its_broadcast, (3,)),
                                      (_fused_temp_with_its_broadcast, (70,)),
                                      (_fused_temp_with_its_transpose, (1, 3)),
                                      (_fused_temp_with_its_transpose, (6, 6)),
                                      (_input_with_its_broadcast, (5,))])
def test_one_value_read_along_two_axis_maps(fn, shape, target, rng):
    """A value used in two roles (both matmul operands, or beside a view of itself) keeps
    its axes apart: before, x @ x merged M, N and K (giving only the diagonal)."""
    require_target(target)
    x = rng.standard_normal(shape).astype(np.float32)
    got = tj.kernel(fn, target=target)(x)
    close(got, fn(x), np.float32)


def test_value_returned_beside_a_matmul_is_written(rng):
    a = rng.random((3, 9, 1))
    b = np.array([10], np.int32)
    f = tj.kernel(lambda a, b: (a.astype(np.float64), a @ b))
    out0, out1 = f(a, b)
    np.testing.assert_array_equal(out0, a)
    close(out1, a @ b, np.float64)
    o, p = rng.random((1, 1)), rng.random((1, 1))
    g = tj.kernel(lambda a, b: ((a @ b) @ a, a))
    r0, r1 = g(o, p)
    close(r0, (o @ p) @ o, np.float64)
    np.testing.assert_array_equal(r1, o)


@pytest.mark.parametrize("red", ["sum", "min", "argmin", "argmax", "any", "rsqrt"])
def test_reduction_of_a_reduction_returned_beside_it(red, rng):
    """The inner reduction is stored (an output) and read by the outer one through a view."""
    x = rng.standard_normal((5, 7))
    if red == "any":
        f = lambda a: ((a > 0).any(axis=0).sum(), (a > 0).any(axis=0))  # noqa: E731
    elif red == "rsqrt":
        x = np.abs(x) + 0.5
        for f, want in ((lambda a: (tj.rsqrt(a).sum(axis=0).sum(), tj.rsqrt(a).sum(axis=0)),
                         ((1 / np.sqrt(x)).sum(axis=0).sum(), (1 / np.sqrt(x)).sum(axis=0))),
                        (lambda a: (a.sum(axis=0).sum(), tj.rsqrt(a.sum(axis=0))),
                         (x.sum(axis=0).sum(), 1 / np.sqrt(x.sum(axis=0))))):
            for g, w in zip(tj.kernel(f)(x), want):
                close(g, w, np.float64)
        return
    else:
        f = lambda a: (getattr(a, red)(axis=0).sum(), getattr(a, red)(axis=0))  # noqa: E731
    got = tj.kernel(f)(x)
    for g, w in zip(got, f(x)):
        close(g, w, np.float64)


def test_matmul_beside_its_reduction(rng):
    a = rng.standard_normal((6, 6))
    got = tj.kernel(lambda a: ((a @ a).sum(), a @ a))(a)
    close(got[0], (a @ a).sum(), np.float64)
    close(got[1], a @ a, np.float64)
    got = tj.kernel(lambda a: ((a @ a).sum(axis=0).sum(), (a @ a).sum(axis=0)))(a)
    close(got[0], (a @ a).sum(axis=0).sum(), np.float64)
    close(got[1], (a @ a).sum(axis=0), np.float64)


@pytest.mark.parametrize("dta,dtb", [(bool, np.int64), (bool, bool), (np.float32, bool),
                                     (np.int32, bool)])
def test_matmul_of_bools(dta, dtb, rng):
    a = rng.random((5, 7)) > 0.5 if dta is bool else rng.integers(-5, 5, (5, 7)).astype(dta)
    b = rng.random((7, 3)) > 0.5 if dtb is bool else rng.integers(-5, 5, (7, 3)).astype(dtb)
    got = tj.kernel(lambda a, b: a @ b)(a, b)
    want = a @ b
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    x = rng.standard_normal((4, 4))
    np.testing.assert_array_equal(tj.kernel(lambda a: (a > 0) @ a)(x), (x > 0) @ x)


@pytest.mark.parametrize("fn", [lambda a, b: a - b.mean(), lambda a, b: a * b.sum(),
                                lambda a, b: a - b.max(keepdims=True),
                                lambda a, b: a * b.sum(axis=1, keepdims=True)[:, :1].T])
def test_reduction_broadcast_into_larger_work_is_its_own_kernel(fn, rng):
    """A reduction of b used over a's larger space is computed once (its own kernel), not
    at every element of a: before, `a - b.mean()` on 1M elements took 25 s."""
    a = rng.standard_normal((64, 64)).astype(np.float32)
    b = rng.standard_normal((64, 64)).astype(np.float32)
    k = tj.kernel(fn)
    low = k.lower(a, b)
    assert low.n_kernels == 2
    red = [g for g in low.groups if g.kind == "reduce"]
    assert len(red) == 1
    # the reduce kernel iterates b's elements only: no axis of a in its domain
    assert np.prod(red[0].domain) == b.size
    np.testing.assert_allclose(k(a, b), fn(a, b), rtol=1e-4, atol=1e-4)


def test_matmul_operand_that_folds_to_a_constant(rng):
    """argmax over a size-1 axis folds to 0: the matmul still reads it from a buffer (it was
    'node (const) is read from memory but never stored')."""
    x = rng.random((2, 1)).astype(np.float32)
    y = rng.standard_normal((2, 3))
    for f in (lambda x, y: x.argmax(axis=1) @ y, lambda x, y: y.T @ x.argmin(axis=1, keepdims=True)):
        close(tj.kernel(f)(x, y), f(x, y), np.float64)


@pytest.mark.parametrize("target", ["host", "wgsl"])
def test_matmul_operand_that_is_a_scalar_argument(target, rng):
    """A 0-d array (a scalar argument: GPU targets pass it by value) as a matmul operand is
    copied into a buffer first; WGSL indexed the value as an array (the fuzzer found it)."""
    require_target(target)
    x0 = np.array(rng.integers(-9, 9), dtype=np.int32)
    f = lambda x0: np.matmul(x0.reshape(-1), x0.reshape(-1))  # noqa: E731
    np.testing.assert_array_equal(tj.kernel(f, target=target)(x0), f(x0))
    y = rng.standard_normal((1, 3)).astype(np.float32)
    g = lambda s, y: s.reshape(1, 1) @ y                      # noqa: E731
    close(tj.kernel(g, target=target)(np.float32(2.5), y), g(np.float32(2.5), y), np.float32)


def test_group_order_is_networkx_lexicographical_topological_sort():
    """fuse/order.py replaced networkx (86 ms of import) in the partition: on random graphs,
    acyclic or not, it gives networkx's order and networkx's verdict on cycles."""
    from torsh_jit.fuse.order import is_acyclic, topological_order
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(18)
    for trial in range(400):
        n = int(rng.integers(1, 12))
        m = int(rng.integers(0, 3 * n))
        edges = [(int(a), int(b)) for a, b in rng.integers(-1, n, size=(m, 2)) if a != b]
        if trial % 2:   # half of them acyclic by construction: edges go up the numbering
            edges = [(min(a, b), max(a, b)) for a, b in edges]
        dg = nx.DiGraph()
        dg.add_nodes_from(range(n))
        dg.add_edges_from(edges)
        acyclic = nx.is_directed_acyclic_graph(dg)
        assert is_acyclic(edges) == nx.is_directed_acyclic_graph(nx.DiGraph(edges))
        got = topological_order(range(n), edges)
        assert (got is not None) == acyclic
        if acyclic:
            assert got == list(nx.lexicographical_topological_sort(dg))
