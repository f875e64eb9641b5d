"""The op corpus on the GPU, compared with numpy; arrays in and out (numpy, cupy, torch).

Skipped, each test with the reason, where no CUDA GPU is visible (cupy finds no device).
TORSH_JIT_GPU_CASES=small keeps the cases small (compute-sanitizer runs them).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.backends import cuda as backend

from gpu_corpus import ALL_CASES, CASES, HALF_CASES, run_check

pytestmark = pytest.mark.skipif(not backend.gpu_available(),
                                reason="no CUDA GPU here (cupy is missing or sees no device)")

SMALL = os.environ.get("TORSH_JIT_GPU_CASES") == "small"
BIG = {"rows-block-1024", "big-matmul-float16", "big-matmul-bfloat16", "long-sum"}
RUN = [c for c in ALL_CASES if not (SMALL and c.name in BIG)]

_kernels: dict = {}


def kernel_for(case):
    k = _kernels.get(case.name)
    if k is None:
        k = _kernels[case.name] = tj.kernel(case.fn(tj)).to("cuda")
    return k


@pytest.mark.parametrize("case", RUN, ids=lambda c: c.name)
def test_corpus_numpy_in_numpy_out(case, rng):
    args = case.make(rng)
    got = kernel_for(case)(*args)
    for g in (got if isinstance(got, tuple) else (got,)):
        assert isinstance(g, (np.ndarray, np.generic))
    run_check(case, got, args)


def test_cuda_alias_is_this_gpus_arch():
    t = tj.parse_target("cuda")
    assert t.language == "cuda"
    assert backend.runs_on(t, backend.device_arch())
    if backend.device_arch() == 90:
        assert t.name == "cuda-sm90a"      # Hopper: the wgmma target
    assert "cuda" in t.name and t.name in tj.available_targets()


def test_cupy_in_cupy_out_on_the_same_device():
    cp = pytest.importorskip("cupy")
    k = tj.kernel(lambda a, b: tj.exp(a) * b - 1).to("cuda")
    a = cp.random.standard_normal(1 << 16, dtype=cp.float32)
    b = cp.random.standard_normal(1 << 16, dtype=cp.float32)
    out = k(a, b)
    assert isinstance(out, cp.ndarray) and out.device.id == a.device.id
    np.testing.assert_allclose(out.get(), np.exp(a.get()) * b.get() - 1, rtol=1e-6, atol=1e-6)
    # strided and misaligned views read in place (no copy): the wide path falls back per call
    v = a[1::2]
    w = b[1:][: v.size]
    out = k(v, w)
    np.testing.assert_allclose(out.get(), np.exp(v.get()) * w.get() - 1, rtol=1e-6, atol=1e-6)
    o = cp.empty_like(a)
    assert k(a, b, out=o) is o


def test_torch_in_torch_out_without_copies():
    torch = pytest.importorskip("torch")
    k = tj.kernel(lambda x, w, b: tj.relu(x @ w + b)).to("cuda")
    x = torch.randn(256, 128, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(128, 192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(192, device="cuda", dtype=torch.bfloat16)
    out = k(x, w, b)
    assert isinstance(out, torch.Tensor) and out.is_cuda and out.device == x.device
    ref = torch.relu(x.float() @ w.float() + b.float())
    err = (out.float() - ref).norm() / ref.norm()
    assert err < 1e-2, float(err)
    s = tj.kernel(lambda x: tj.exp(x - x.max(axis=-1, keepdims=True)) /
                  tj.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True)).to("cuda")
    y = torch.randn(64, 1000, device="cuda")
    torch.testing.assert_close(s(y), torch.softmax(y, -1), rtol=1e-5, atol=1e-6)


def test_dlpack_and_cuda_array_interface():
    cp = pytest.importorskip("cupy")

    class CAI:
        def __init__(self, a):
            self.a = a
            self.__cuda_array_interface__ = a.__cuda_array_interface__
    a = cp.arange(1000, dtype=cp.float32)
    k = tj.kernel(lambda x: x * 3).to("cuda")
    np.testing.assert_array_equal(k(CAI(a)).get(), np.arange(1000, dtype=np.float32) * 3)


def test_launch_is_explained_with_the_devices_numbers():
    x = np.ones((4096, 4096), np.float32)
    low = tj.kernel(lambda x: x / x.sum(axis=-1, keepdims=True)).lower(x, target="cuda")
    text = low.explain()
    assert "registers/thread" in text and "SMs" in text and "resident block" in text


def test_compile_is_cached_across_kernels():
    f = lambda a: a * 2 + 1       # noqa: E731
    x = np.ones(100, np.float32)
    n0 = backend.STATS["compiles"]
    tj.kernel(f).to("cuda")(x)
    n1 = backend.STATS["compiles"]
    from torsh_jit import compiler
    compiler.LOADED.clear()
    tj.kernel(f).to("cuda")(x)
    assert backend.STATS["compiles"] == n1 and n1 >= n0


@pytest.mark.parametrize("threads,unroll,halve", [(256, 1, False), (1024, 2, False), (512, 1, True),
                                                   (1024, 2, True)])
def test_elementwise_writes_every_element_whatever_block_the_launcher_picks(threads, unroll, halve,
                                                                           rng, monkeypatch):
    # The launcher may run an elementwise kernel with fewer threads per block than it was
    # generated for (occupancy); the kernel must index by blockDim.x. The output starts as
    # NaN so that an element nobody wrote cannot pass for a right one.
    cp = pytest.importorskip("cupy")
    from torsh_jit import compiler
    from torsh_jit.schedule.gpu import GpuConfig
    if halve:
        monkeypatch.setattr(backend.CudaFunction, "_choose_block",
                            lambda self, fn, l, *a: max(64, l.threads // 2))
    n = (1 << 20) + 3 * 4 + 1                      # a tail past the last whole group
    a, b, c = (rng.standard_normal(n, dtype=np.float32) for _ in range(3))
    fn = lambda a, b, c: tj.exp(a) * b + tj.sin(c) * 0.5 - tj.tanh(a * c)   # noqa: E731
    k = tj.kernel(fn).to("cuda")
    args = tuple(cp.asarray(v) for v in (a, b, c))
    specs = k.specs_of(args)
    p0, single = k._plan(specs)
    cfg = GpuConfig(threads=threads, vec=4, unroll=unroll)
    compiler.LOADED.clear()
    f = compiler.build(compiler.plan(p0.graph, specs, p0.target, configs=(cfg,)))
    out = cp.full(n, np.nan, np.float32)
    f.call(args, out, single)
    want = np.exp(a.astype(np.float64)) * b + np.sin(c.astype(np.float64)) * 0.5 - np.tanh(a.astype(np.float64) * c)
    np.testing.assert_allclose(out.get(), want, rtol=2e-6, atol=2e-6)


def test_elementwise_misaligned_views_run_a_variant_compiled_once(rng):
    # The kernel has only 16-byte accesses; a view starting mid-vector runs the module with
    # scalar accesses, compiled on its first need and kept.
    cp = pytest.importorskip("cupy")
    n = 4099
    x, y = (rng.standard_normal(n + 1, dtype=np.float32) for _ in range(2))
    k = tj.kernel(lambda a, b: a * 2 - b).to("cuda")
    gx, gy = cp.asarray(x), cp.asarray(y)
    np.testing.assert_array_equal(k(gx[:n], gy[:n]).get(), x[:n] * 2 - y[:n])
    n0 = backend.STATS["compiles"]
    for _ in range(2):
        np.testing.assert_array_equal(k(gx[1:], gy[:n]).get(), x[1:] * 2 - y[:n])
    assert backend.STATS["compiles"] - n0 <= 1



_TMA_CASES = [  # (label, tile_m, tile_n, stages, inflight, raster, persistent, cluster, tma_store)
    ("128x256 s4 i1 r8", 128, 256, 4, 1, 8, False, 0, False),
    ("64x128 s2 i0 r1", 64, 128, 2, 0, 1, False, 0, False),
    ("192x192 s3 i1 r4", 192, 192, 3, 1, 4, False, 0, False),
    ("128x64 s6 i1 r16", 128, 64, 6, 1, 16, False, 0, False),
    ("128x256 s4 i1 r16 persistent", 128, 256, 4, 1, 16, True, 0, False),
    ("64x64 s3 i0 r8 persistent", 64, 64, 3, 0, 8, True, 0, False),
    ("128x256 s4 i1 r8 cluster 2", 128, 256, 4, 1, 8, False, 2, False),
    ("128x128 s4 i0 r1 cluster 2 persistent", 128, 128, 4, 0, 1, True, 2, False),
    ("64x256 s3 i1 r16 cluster 2 persistent", 64, 256, 3, 1, 16, True, 2, False),
    ("128x256 s3 i0 r16 persistent tma store", 128, 256, 3, 0, 16, True, 0, True),
    ("192x128 s3 i1 r8 tma store", 192, 128, 3, 1, 8, False, 0, True),
    ("128x256 s3 i0 r16 cluster 2 persistent tma store", 128, 256, 3, 0, 16, True, 2, True),
]


@pytest.mark.parametrize("label,bm,bn,stages,inflight,raster,persistent,cluster,tma_store",
                         _TMA_CASES, ids=[c[0] for c in _TMA_CASES])
def test_tma_matmul_schedules_match_numpy(label, bm, bn, stages, inflight, raster, persistent,
                                          cluster, tma_store, rng):
    # The warp-specialised kernel fed by the TMA, under schedules the tuner may pick: M, N
    # and K past the tiles (the TMA's zero fill, the epilogue's checks), B along N and along
    # K, a batch with B broadcast and one without, a fused epilogue; a block per tile, or a
    # persistent grid whose blocks take several (batch, tile) items each, the slots refilled
    # across them; clusters of two blocks sharing B by multicast, with 333 rows giving a
    # cluster whose second tile lies wholly past M; 16-bit outputs written by the TMA from
    # shared memory (it skips what lies outside the output). Outputs start as NaN.
    if backend.device_arch() != 90:
        pytest.skip("wgmma and the TMA kernel are sm_90a: this GPU is not a Hopper")
    torch = pytest.importorskip("torch")
    from ml_dtypes import bfloat16 as BF16
    from torsh_jit import compiler
    from torsh_jit.schedule.gpu import GpuConfig
    cfg = GpuConfig(threads=128 * (bm // 64 + 1), tile_m=bm, tile_n=bn, tile_k=64, stages=stages,
                    wgmma=True, inflight=inflight, tma=True, raster=raster, persistent=persistent,
                    cluster=cluster, tma_store=tma_store)

    def u(*shape):
        x = torch.from_numpy(rng.uniform(-1, 1, shape).astype(np.float32)).to("cuda", torch.bfloat16)
        return x, x.double().cpu().numpy()
    (a, a_), (b, b_), (bias, bias_), (bt, bt_) = u(333, 328), u(328, 296), u(296), u(296, 328)
    (c, c_), (d, d_), (e, e_) = u(2, 3, 200, 136), u(136, 264), u(2, 3, 136, 264)
    bb, bb_ = u(2, 3, 1, 264)
    cases = [("relu(a@b+bias)", lambda a, b, bias: tj.relu(a @ b + bias), (a, b, bias),
              np.maximum(a_ @ b_ + bias_, 0)),
             ("a @ b.T", lambda a, bt: a @ bt.T, (a, bt), a_ @ bt_.T),
             ("batched, B broadcast", lambda c, d: c @ d, (c, d), c_ @ d_),
             ("batched", lambda c, e: c @ e, (c, e), c_ @ e_),
             ("batched, a bias per batch", lambda c, e, bb: c @ e + bb, (c, e, bb), c_ @ e_ + bb_),
             ("bfloat16 out", lambda a, b: (a @ b).astype(BF16), (a, b), a_ @ b_),
             ("relu(a @ b.T + bias), bfloat16 out",
              lambda a, bt, bias: tj.relu(a @ bt.T + bias).astype(BF16), (a, bt, bias),
              np.maximum(a_ @ bt_.T + bias_, 0)),
             ("batched, B broadcast, bfloat16 out", lambda c, d: (c @ d).astype(BF16), (c, d),
              c_ @ d_)]
    for what, fn, args, want in cases:
        k = tj.kernel(fn).to("cuda")
        specs = k.specs_of(args)
        p0, single = k._plan(specs)
        p = compiler.plan(p0.graph, specs, p0.target, configs=(cfg,))
        f = compiler.build(p)
        assert f.launches[-1].tmaps, f"{what}: not the TMA kernel ({f.launches[-1].describe()})"
        # under tma_store the TMA writes the output (bf16 whole, float32 in two parts)
        want_maps = 3 if tma_store else 2
        assert len(f.launches[-1].tmaps) == want_maps, (what, f.launches[-1].describe())
        (shape, dtype), = f.outputs
        out = torch.full(tuple(shape), float("nan"), dtype=getattr(torch, dtype), device="cuda")
        f.call(args, out, single)
        np.testing.assert_allclose(out.double().cpu().numpy(), want, rtol=1e-2, atol=5e-2,
                                   err_msg=f"{label}: {what}")


def test_tma_store_output_off_16_bytes_runs_the_fallback(rng):
    # The default for a bf16-out matmul on a Hopper writes through the TMA, whose tensor map
    # needs a 16-byte-aligned output; an output view one element in must get the module's
    # CUDA-core fallback, and both must match numpy
    if backend.device_arch() != 90:
        pytest.skip("the TMA kernel is sm_90a: this GPU is not a Hopper")
    torch = pytest.importorskip("torch")
    from ml_dtypes import bfloat16 as BF16
    from torsh_jit import compiler
    M, N, K = 384, 512, 320
    a, b = (torch.from_numpy(rng.uniform(-1, 1, s).astype(np.float32)).to("cuda", torch.bfloat16)
            for s in ((M, K), (K, N)))
    want = a.double().cpu().numpy() @ b.double().cpu().numpy()
    k = tj.kernel(lambda a, b: (a @ b).astype(BF16)).to("cuda")
    specs = k.specs_of((a, b))
    p, single = k._plan(specs)
    assert p.configs[0].tma_store, p.configs[0]
    f = compiler.build(p)
    assert len(f.launches[-1].tmaps) == 3
    for off in (0, 1):
        base = torch.full((M * N + 1,), float("nan"), dtype=torch.bfloat16, device="cuda")
        out = base[off:off + M * N].view(M, N)
        f.call((a, b), out, single)
        np.testing.assert_allclose(out.double().cpu().numpy(), want, rtol=1e-2, atol=2e-2,
                                   err_msg=f"output {off * 2} bytes past 16")


def test_matmul_operands_off_16_bytes_run_the_fallback(rng):
    # The tensor maps (and cp.async) need 16-byte-aligned operands; a view that starts one
    # element in has the same layout, so the same plan, and must run the CUDA-core fallback
    # of that module, with numpy's result.
    torch = pytest.importorskip("torch")
    M = N = K = 256
    base = torch.from_numpy(rng.uniform(-1, 1, M * K + 1).astype(np.float32)).to("cuda", torch.bfloat16)
    a_ok = base[:M * K].view(M, K)
    a_off = base[1:].view(M, K)                        # data_ptr 2 bytes past a 16-byte boundary
    b = torch.from_numpy(rng.uniform(-1, 1, (K, N)).astype(np.float32)).to("cuda", torch.bfloat16)
    k = tj.kernel(lambda a, b: a @ b).to("cuda")
    for a in (a_ok, a_off):
        want = a.double().cpu().numpy() @ b.double().cpu().numpy()
        np.testing.assert_allclose(k(a, b).double().cpu().numpy(), want, rtol=1e-3, atol=1e-3)
    low = k.lower(a_ok, b)
    if backend.device_arch() == 90:
        assert low.plan.configs[0].tma, "the default on a Hopper is the TMA kernel"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_prod_with_a_wide_dynamic_range_is_exact_on_every_path(dtype, rng):
    """Issue 14 on the GPU: rows alternating huge and tiny factors, through a warp per row, a
    block per row (shared memory), a thread per column, and blocks sharing a long row (the
    split path's workspace); the exact product is finite, partials of the even and of the
    odd elements are inf and 0. Special values and subnormals keep numpy's answer."""
    from numpy_reference import exact_prod, wide_range_rows
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    f = tj.kernel(lambda x, xt: (x.prod(axis=1), xt.prod(axis=0), x.prod())).to("cuda")
    for n in (64, 4096):
        x = wide_range_rows(rng, dtype, 6, n)
        want = exact_prod(x, 1).astype(dtype)
        assert np.all(np.isfinite(want))
        rows, cols, whole = f(x, np.ascontiguousarray(x.T))
        np.testing.assert_allclose(rows, want, rtol=rtol)
        np.testing.assert_allclose(cols, want, rtol=rtol)
        np.testing.assert_allclose(whole, exact_prod(x.ravel(), 0).astype(dtype), rtol=rtol * 10)
    long = wide_range_rows(rng, dtype, 2, 1 << 18)           # split across blocks
    got = tj.kernel(lambda x: x.prod(axis=1)).to("cuda")(long)
    np.testing.assert_allclose(got, exact_prod(long, 1).astype(dtype), rtol=rtol * 100)  # 2^17 roundings
    sp = rng.uniform(0.5, 2, (4, 300)).astype(dtype)
    sp[0, 7], sp[1, 9], sp[1, 100], sp[2, 5] = 0.0, np.inf, 0.0, np.nan
    sp[3, 1], sp[3, 2] = np.finfo(dtype).smallest_subnormal * 5, 0.75
    sp[3, 3:] = 1.0
    got = tj.kernel(lambda x: x.prod(axis=1)).to("cuda")(sp)
    assert got[0] == 0 and np.isnan(got[1]) and np.isnan(got[2])
    assert got[3] == exact_prod(sp[3:], 1).astype(dtype)[0]
