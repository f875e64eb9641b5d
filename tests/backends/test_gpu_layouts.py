"""Rows that lie along memory on the GPU. Reductions (x.sum(axis=0), a middle axis of a 3-D
array, a softmax or layernorm over a transposed view): the column schedule (GpuConfig
columns=True, lanes along adjacent rows, several threads per row, a result along the row
written through a tile) and its split across blocks. Elementwise work whose operands
disagree on the layout (x + y.T, a Fortran-order chain): 32 x 32 shared-memory tiles.
Compared with numpy.

The schedule and the CUDA C are checked here without a GPU (the config chosen, NVRTC compiles
it); on a GPU every case runs on cupy views of fresh random data (skipped elsewhere).
"""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.backends import cuda as backend
from torsh_jit.compiler import plan, render
from torsh_jit.ir.tracer import ArgSpec, trace

from dynamic_corpus import _layernorm, _layernorm_np as _np_layernorm, _softmax, \
    _softmax_np as _np_softmax


def _t(shape):
    """A transposed view: the last axis of the result is strided."""
    return lambda r: r.standard_normal(shape[::-1]).astype(np.float32).T


def _c(shape):
    return lambda r: r.standard_normal(shape).astype(np.float32)


# name: (kernel body, numpy, [argument makers])
CASES = {
    "sum0-tall": (lambda x: x.sum(axis=0), lambda x: x.sum(axis=0), [_c((70001, 32))]),
    "sum0-square": (lambda x: x.sum(axis=0), lambda x: x.sum(axis=0), [_c((1024, 1000))]),
    "sum0-wide": (lambda x: x.sum(axis=0), lambda x: x.sum(axis=0), [_c((37, 4099))]),
    "sum0-two-rows": (lambda x: x.sum(axis=0), lambda x: x.sum(axis=0), [_c((2, 77))]),
    "max0": (lambda x: x.max(axis=0), lambda x: x.max(axis=0), [_c((3001, 65))]),
    "argmax0": (lambda x: x.argmax(axis=0), lambda x: x.argmax(axis=0), [_c((2049, 33))]),
    "mean0-odd": (lambda x: x.mean(axis=0), lambda x: x.mean(axis=0), [_c((777, 301))]),
    "sum-middle": (lambda x: x.sum(axis=1), lambda x: x.sum(axis=1), [_c((7, 300, 65))]),
    "sum-first-3d": (lambda x: x.sum(axis=0), lambda x: x.sum(axis=0), [_c((513, 9, 31))]),
    "sum-of-transposed": (lambda x: x.sum(axis=-1), lambda x: x.sum(axis=-1), [_t((300, 1001))]),
    "softmax-transposed": (_softmax, _np_softmax, [_t((1000, 257))]),
    "softmax-transposed-long": (_softmax, _np_softmax, [_t((64, 20000))]),
    "softmax-axis0": (lambda x: tj.exp(x - x.max(axis=0, keepdims=True)) /
                      tj.exp(x - x.max(axis=0, keepdims=True)).sum(axis=0, keepdims=True),
                      lambda x: np.exp(x - x.max(0, keepdims=True)) /
                      np.exp(x - x.max(0, keepdims=True)).sum(0, keepdims=True), [_c((333, 129))]),
    "layernorm-transposed": (_layernorm, _np_layernorm,
                             [_t((500, 384)), _c((384,)), _c((384,))]),
    # elementwise: operands that disagree on the layout meet in shared-memory tiles
    "add-transposed": (lambda x, y: x + y, lambda x, y: x + y, [_c((1000, 77)), _t((1000, 77))]),
    "fortran-chain": (lambda a, b, c: a * b + c, lambda a, b, c: a * b + c,
                      [_t((333, 513)), _t((333, 513)), _t((333, 513))]),
    "exp-of-transposed-bias": (lambda x, b: tj.exp(x) * 2 + b, lambda x, b: np.exp(x) * 2 + b,
                               [_t((4097, 65)), _c((65,))]),
}
ELEMENTWISE = {"add-transposed", "fortran-chain", "exp-of-transposed-bias"}


def _spec(a):
    st = tuple(s // a.itemsize for s in a.strides)
    return ArgSpec("array", a.shape, "float32", strides=None if a.flags.c_contiguous else st)


def _plan_and_compile(body, args, target):
    """The plan of body on arrays of these layouts for target, checked to compile cleanly."""
    specs = tuple(_spec(a) for a in args)
    t = tj.parse_target(target)
    g, _ = trace(body, specs)
    p = plan(g, specs, t)
    ptx, log = backend.compile_ptx(render(p), t, backend.module_options(p))
    assert log == "", log
    return p


def _on_device(cp, args):
    """cupy copies in the same layouts: a transposed view stays one."""
    return [cp.asarray(a) if a.flags.c_contiguous else cp.asarray(np.ascontiguousarray(a.T)).T
            for a in args]


@pytest.mark.parametrize("target", ["cuda-sm80", "cuda-sm90a"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rows_along_memory_take_the_column_schedule_and_compile(name, target, rng):
    from torsh_jit.backends.cuda import toolchain
    if toolchain.nvrtc_route() is None:
        pytest.fail("NVRTC is missing: pip install cuda-python nvidia-cuda-nvrtc (the test extra)")
    body, _, makers = CASES[name]
    p = _plan_and_compile(body, [m(rng) for m in makers], target)
    kind = "elementwise" if name in ELEMENTWISE else "reduce"
    reduces = [c for gr, c in zip(p.part.groups, p.configs) if gr.kind == kind]
    assert reduces and all(c.columns for c in reduces), [str(c) for c in p.configs]
    if name == "sum0-tall":        # 32 rows of 70001: blocks share them
        assert reduces[0].split, str(reduces[0])


@pytest.mark.skipif(not backend.gpu_available(),
                    reason="no CUDA GPU here (cupy is missing or sees no device)")
@pytest.mark.parametrize("name", sorted(CASES))
def test_rows_along_memory_match_numpy_on_the_gpu(name, rng):
    cp = pytest.importorskip("cupy")
    body, ref, makers = CASES[name]
    args = [m(rng) for m in makers]
    got = tj.kernel(body, target="cuda")(*_on_device(cp, args))
    want = ref(*[a.astype(np.float64) for a in args])
    got = cp.asnumpy(got)
    if name.startswith("argmax"):
        np.testing.assert_array_equal(got, want)
        return
    scale = np.abs(args[0]).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6 * (1 + np.sqrt(scale.size / max(1, want.size))),
                               err_msg=name)


# matmuls on the CUDA cores (float32): operands in either layout (consecutive threads read
# along each one's contiguous axis), and K split across blocks when the tiles are few
MATMULS = {
    "split-k-64x64x65536": ((64, 65536), (65536, 64), False, False, None),
    "split-k-odd-300x5000x7": ((300, 5000), (5000, 7), False, False, None),
    "split-k-epilogue": ((96, 20000), (20000, 40), False, False, "bias-relu"),
    "x-at-w-transposed": ((257, 300), (130, 300), False, True, None),
    "a-transposed": ((300, 257), (300, 129), True, False, None),
    "big-tiles-odd": ((1000, 333), (333, 517), False, False, "bias-relu"),
    "batched": ((16, 33, 65), (16, 65, 31), False, False, None),
}


def _matmul_case(name, rng):
    sa, sb, ta, tb, epi = MATMULS[name]
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    a = a.T if ta else a               # (300, 257).T: A read along m
    b = b.T if tb else b               # w.T: B read along k
    args = [a, b] + ([rng.standard_normal(b.shape[-1]).astype(np.float32)] if epi else [])
    body = (lambda x, y, c: tj.maximum(x @ y + c, 0)) if epi else (lambda x, y: x @ y)
    ref = (lambda x, y, c: np.maximum(x @ y + c, 0)) if epi else (lambda x, y: x @ y)
    return body, ref, args


@pytest.mark.parametrize("name", sorted(MATMULS))
def test_simt_matmul_configs_compile(name, rng):
    body, _, args = _matmul_case(name, rng)
    p = _plan_and_compile(body, args, "cuda-sm90a")
    cfg = next(c for gr, c in zip(p.part.groups, p.configs) if gr.kind == "matmul")
    assert not (cfg.mma or cfg.wgmma)
    if name.startswith("split-k"):
        assert cfg.parts > 1, str(cfg)


@pytest.mark.skipif(not backend.gpu_available(),
                    reason="no CUDA GPU here (cupy is missing or sees no device)")
@pytest.mark.parametrize("name", sorted(MATMULS))
def test_simt_matmuls_match_numpy_on_the_gpu(name, rng):
    cp = pytest.importorskip("cupy")
    body, ref, args = _matmul_case(name, rng)
    got = cp.asnumpy(tj.kernel(body, target="cuda")(*_on_device(cp, args)))
    want = ref(*[a.astype(np.float64) for a in args])
    K = args[0].shape[-1]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(K), err_msg=name)
