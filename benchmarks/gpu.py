"""torsh-jit on an NVIDIA GPU against torch eager, torch.compile, a cupy ElementwiseKernel and
cuBLAS (torch.matmul), in one run.

    python benchmarks/gpu.py                 # the table (and --json FILE for every number)
    python benchmarks/gpu.py --quick         # smaller repeat counts, no torch.compile

Times are GPU times: CUDA events around each call, the calls enqueued behind a sleeping
kernel so that no peer's host overhead (Python, launch) is in the number, median of --repeat
calls after warm-up; the contenders of a workload are timed in interleaved rounds (5; GEMM
3) and each one's number is the median of its rounds. Inputs are fresh random data (never zeros), large enough to miss the L2.
The memory-bound limit is the device copy bandwidth (bytes read + written by a 64M float32
device-to-device copy, measured in the same run). torsh-jit takes torch tensors in and gives
torch tensors out (no copies); the chain is also timed with cupy arrays. Every torsh-jit
result is checked against torch before it is timed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as Fn  # noqa: E402

import torsh_jit as tj  # noqa: E402
from torsh_jit import compiler  # noqa: E402
from torsh_jit.backends import cuda as backend  # noqa: E402

try:
    import cupy as cp
except ImportError:     # the table says n/a
    cp = None

ROWS = []               # (section, name, ms, extra dict)


def gpu_ms(fn, repeat=30, warmup=3) -> float:
    """Median GPU time of one call (ms): events around each call, all enqueued while the GPU
    sleeps, so host overhead is hidden."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(repeat + 1)]
    torch.cuda._sleep(int(2e7))          # ~10 ms of GPU time: the CPU runs ahead meanwhile
    for i in range(repeat):
        ev[i].record()
        fn()
    ev[repeat].record()
    torch.cuda.synchronize()
    return float(np.median([ev[i].elapsed_time(ev[i + 1]) for i in range(repeat)]))


ROUNDS = 5


def compare(fns: dict, R: int, rounds: int | None = None) -> dict:
    """{name: ms}: each contender timed by gpu_ms in `rounds` interleaved rounds (so a drift of
    the clocks or of the memory system falls on all of them alike), the median of the rounds."""
    per = {k: [] for k in fns}
    for _ in range(rounds or ROUNDS):
        for k, f in fns.items():
            per[k].append(gpu_ms(f, R))
    return {k: float(np.median(v)) for k, v in per.items()}


def record(section, name, ms, **extra):
    ROWS.append({"section": section, "name": name, "ms": ms, **extra})
    more = "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
    print(f"  {section:<28} {name:<26} {ms:9.4f} ms  {more}", flush=True)


def rel_err(a, b) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def check(name, got, want, tol):
    e = rel_err(got, want)
    if not e <= tol:
        raise SystemExit(f"{name}: torsh-jit differs from torch: relative error {e:.2e} > {tol:.0e}")
    return e


# -- the functions ------------------------------------------------------------------------------
def chain(a, b, c):
    return tj.exp(a) * b + tj.sin(c) * 0.5 - tj.tanh(a * c)


def chain_ref(a, b, c):
    return torch.exp(a) * b + torch.sin(c) * 0.5 - torch.tanh(a * c)


def cupy_chain(args):
    """The chain as a cupy ElementwiseKernel: (kernel, cupy views of args, output)."""
    ek = cp.ElementwiseKernel("float32 a, float32 b, float32 c", "float32 o",
                              "o = exp(a) * b + sin(c) * 0.5f - tanh(a * c)", "tj_bench_chain")
    ca = tuple(cp.asarray(t) for t in args)
    return ek, ca, cp.empty_like(ca[0])


def softmax(x):
    e = tj.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / tj.sqrt(var + 1e-5) * w + b


def layernorm_rsqrt(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) * tj.rsqrt(var + 1e-5) * w + b


def total(x):
    return tj.sum(x)


def matmul(a, b):
    return a @ b


def matmul_to_bf16(a, b):
    import ml_dtypes
    return (a @ b).astype(ml_dtypes.bfloat16)


def linear_relu(x, w, b):
    return tj.relu(x @ w + b)


def with_config(fn, args, cfg):
    """A call of fn on args built with an explicit schedule (the tuner's space, by hand)."""
    k = tj.kernel(fn).to("cuda")
    specs = k.specs_of(args)
    p0, single = k._plan(specs)
    p = compiler.plan(p0.graph, specs, p0.target, configs=(cfg,))
    f = compiler.build(p)
    return lambda: f.call(args, None, single)


_MMA = dict(mma=True, tile_k=32, stages=4)
_WG = dict(wgmma=True, tile_k=64, tile_m=128)
_TMA = dict(_WG, tma=True)
GEMM_SWEEP = [  # (label, GpuConfig fields): the default first, then the schedules around it
    ("tma 128x256 s4 i0 r16 persistent", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=0, raster=16,
                                              persistent=True)),
    ("tma 128x256 s4 i1 r16 persistent", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1, raster=16,
                                              persistent=True)),
    ("tma 128x256 s4 i1 r16", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1, raster=16)),
    ("tma 128x256 s3 i1 r16 persistent cluster 2", dict(_TMA, threads=384, tile_n=256, stages=3, inflight=1,
                                                        raster=16, persistent=True, cluster=2)),
    ("tma 128x256 s4 i1 r16 persistent cluster 2", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1,
                                                        raster=16, persistent=True, cluster=2)),
    ("tma 128x256 s4 i0 r16 persistent cluster 2", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=0,
                                                        raster=16, persistent=True, cluster=2)),
    ("tma 128x256 s4 i1 r8 persistent cluster 2", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1,
                                                       raster=8, persistent=True, cluster=2)),
    ("tma 128x256 s4 i1 r16 cluster 2", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1, raster=16,
                                             cluster=2)),
    ("tma 128x256 s4 i1 r8 cluster 2", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1, raster=8,
                                            cluster=2)),
    ("wgmma 256x128 s4 i1", dict(_WG, threads=512, tile_m=256, tile_n=128, stages=4, inflight=1)),
    ("tma 128x256 s3 i0 r16 persistent tma-store", dict(_TMA, threads=384, tile_n=256, stages=3, inflight=0,
                                                       raster=16, persistent=True, tma_store=True)),
    ("tma 128x256 s3 i1 r16 persistent tma-store", dict(_TMA, threads=384, tile_n=256, stages=3, inflight=1,
                                                       raster=16, persistent=True, tma_store=True)),
    ("tma 128x256 s3 i0 r8 persistent tma-store", dict(_TMA, threads=384, tile_n=256, stages=3, inflight=0,
                                                      raster=8, persistent=True, tma_store=True)),
    ("tma 128x256 s3 i0 r16 persistent cluster 2 tma-store", dict(_TMA, threads=384, tile_n=256, stages=3,
                                                                 inflight=0, raster=16, persistent=True,
                                                                 cluster=2, tma_store=True)),
    ("tma 128x256 s3 i0 r16 tma-store", dict(_TMA, threads=384, tile_n=256, stages=3, inflight=0, raster=16,
                                             tma_store=True)),
    ("tma 128x256 s4 i1 r8", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1, raster=8)),
    ("tma 128x256 s4 i1 r8 persistent", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=1, raster=8,
                                             persistent=True)),
    ("tma 128x256 s3 i1 r16 persistent", dict(_TMA, threads=384, tile_n=256, stages=3, inflight=1, raster=16,
                                              persistent=True)),
    ("tma 128x128 s6 i1 r16 persistent", dict(_TMA, threads=384, tile_n=128, stages=6, inflight=1, raster=16,
                                              persistent=True)),
    ("tma 128x256 s3 i1 r8", dict(_TMA, threads=384, tile_n=256, stages=3, inflight=1, raster=8)),
    ("tma 128x256 s4 i0 r8", dict(_TMA, threads=384, tile_n=256, stages=4, inflight=0, raster=8)),
    ("tma 128x192 s5 i1 r8", dict(_TMA, threads=384, tile_n=192, stages=5, inflight=1, raster=8)),
    ("tma 128x128 s6 i1 r8", dict(_TMA, threads=384, tile_n=128, stages=6, inflight=1, raster=8)),
    ("tma 192x128 s5 i1 r8", dict(_TMA, threads=512, tile_m=192, tile_n=128, stages=5, inflight=1, raster=8)),
    ("tma 64x256 s4 i1 r8", dict(_TMA, threads=256, tile_m=64, tile_n=256, stages=4, inflight=1, raster=8)),
    ("wgmma 128x256 s4 i1", dict(_WG, threads=256, tile_n=256, stages=4, inflight=1)),
    ("wgmma 128x128 s6 i1", dict(_WG, threads=256, tile_n=128, stages=6, inflight=1)),
    ("wgmma 64x256 s4 i1", dict(_WG, threads=128, tile_m=64, tile_n=256, stages=4, inflight=1)),
    ("mma.sync 128x128x32 2x2w s4", dict(_MMA, threads=128, tile_m=128, tile_n=128, warps_m=2, warps_n=2)),
    ("mma.sync 128x256x32 2x4w s4", dict(_MMA, threads=256, tile_m=128, tile_n=256, warps_m=2, warps_n=4)),
]
ROW_SWEEP = [dict(threads=t, vec=4, tpr=t, cache=4096 // (4 * t)) for t in (64, 128, 256, 512, 1024)] + \
    [dict(threads=t, vec=4, tpr=t) for t in (256, 512)]


def sweep_gemm(dev, R):
    """GEMM bf16 4096 (float32 and bf16 out) and relu(x@w+b) f16 4096 under each tensor-core
    schedule of GEMM_SWEEP."""
    from torsh_jit.schedule.gpu import GpuConfig
    size = 4096
    for label, fn, dt, extra in (("gemm bf16 4096", matmul, torch.bfloat16, 0),
                                 ("gemm bf16 4096 bf16 out", matmul_to_bf16, torch.bfloat16, 0),
                                 ("relu(x@w+b) f16 4096", linear_relu, torch.float16, 1)):
        a = torch.randn(size, size, device=dev, dtype=dt)
        b = torch.randn(size, size, device=dev, dtype=dt) / 64
        args = (a, b) + ((torch.randn(size, device=dev, dtype=dt),) if extra else ())
        ref = torch.matmul(a.float(), b.float())
        if extra:
            ref = torch.relu(ref + args[2].float())
        record(f"sweep {label}", "cuBLAS (torch.matmul)", gpu_ms(lambda: torch.matmul(a, b), R),
               TFLOPs=2 * size ** 3 / gpu_ms(lambda: torch.matmul(a, b), R) / 1e9)
        for name, c in GEMM_SWEEP:
            _timed_config(f"sweep {label}", name, fn, args, GpuConfig(**c), ref, 1e-2, R,
                          TFLOPs=lambda ms: 2 * size ** 3 / ms / 1e9)
        del a, b, args, ref


def sweep_rows(dev, R):
    """softmax and layernorm 4096x4096 under each row schedule of ROW_SWEEP."""
    from torsh_jit.schedule.gpu import GpuConfig
    size = 4096
    x = torch.randn(size, size, device=dev)
    w, b = torch.randn(size, device=dev), torch.randn(size, device=dev)
    for label, fn, args, ref, peer in (
            ("softmax 4096x4096", softmax, (x,), torch.softmax(x, -1), lambda x: torch.softmax(x, -1)),
            ("layernorm 4096x4096", layernorm, (x, w, b), Fn.layer_norm(x, (size,), w, b, 1e-5),
             lambda x, w, b: Fn.layer_norm(x, (size,), w, b, 1e-5))):
        tc = torch.compile(peer)
        record(f"sweep {label}", "torch.compile", gpu_ms(lambda: tc(*args), R))
        for c in ROW_SWEEP:
            cfg = GpuConfig(**c)
            _timed_config(f"sweep {label}", f"{cfg.threads} threads/row, cache {cfg.cache}", fn, args,
                          cfg, ref, 1e-5, R)
    # the same layernorm with the reciprocal square root taken once per row (as torch's is)
    k = tj.kernel(layernorm_rsqrt).to("cuda")
    check("layernorm (rsqrt)", k(x, w, b), Fn.layer_norm(x, (size,), w, b, 1e-5), 1e-5)
    record("sweep layernorm 4096x4096", "(x - mu) * rsqrt(var + eps)", gpu_ms(lambda: k(x, w, b), R))


EW_SWEEP = [dict(threads=t, vec=4, unroll=u) for t in (256, 128, 512, 1024) for u in (1, 2)]


def sweep_elementwise(dev, R):
    """The chain on 64M float32 under each elementwise schedule of EW_SWEEP (the default
    first), beside the cupy ElementwiseKernel."""
    from torsh_jit.schedule.gpu import GpuConfig
    n = 64 << 20
    args = tuple(torch.randn(n, device=dev) for _ in range(3))
    ref = chain_ref(*args)
    fns = {}
    if cp is not None:
        ek, ca, co = cupy_chain(args)
        fns["cupy ElementwiseKernel"] = lambda: ek(*ca, co)
    for c in EW_SWEEP:
        cfg = GpuConfig(**c)
        call = with_config(chain, args, cfg)
        check(f"sweep chain {cfg}", call(), ref, 1e-6)
        fns[f"{cfg.threads} threads, unroll {cfg.unroll}"] = call
    for name, ms in compare(fns, R, 3).items():
        record("sweep chain 64M f32", name, ms, GBps=16 * n / ms / 1e6)


def wgsl_section(dev, R):
    """The chain on 64M float32 and softmax 4096x4096 as WGSL through wgpu (this GPU's Vulkan
    driver) against our CUDA C path. wgpu times a submission of `repeat` runs, waited for by
    reading a buffer back (median of 7 such submissions); CUDA times each call by events."""
    from torsh_jit.backends.wgsl import device as wb
    if wb.gpu() is None:
        print("  wgsl: no wgpu adapter here (wgpu missing or no Vulkan driver): skipped", flush=True)
        return {}
    print(f"  wgsl adapter: {wb.adapter_description()}", flush=True)
    out = {}
    rng = np.random.default_rng(0)
    n = 64 << 20
    a, b, c = (rng.standard_normal(n, dtype=np.float32) for _ in range(3))
    x = rng.standard_normal((4096, 4096), dtype=np.float32)
    for label, fn, args, bytes_ in (("chain 64M f32", chain, (a, b, c), 4 * n * 4),
                                    ("softmax 4096x4096", softmax, (x,), 2 * x.nbytes)):
        kw = tj.kernel(fn).to("wgsl")
        got = kw(*args)
        want = tj.kernel(fn).to("host")(*args)
        err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        if not err <= 1e-5:
            raise SystemExit(f"wgsl {label}: differs from the CPU result by {err:.1e}")
        f = kw.built_variants(*args)["wgsl"]
        d = f.upload(*args)
        w_ms = float(np.median([f.time(d, repeat=20) for _ in range(7)])) * 1e3
        targs = [torch.from_numpy(t).to(dev) for t in args]
        kc = tj.kernel(fn).to("cuda")
        c_ms = gpu_ms(lambda: kc(*targs), R)
        record(f"wgsl {label}", "torsh-jit WGSL (wgpu, Vulkan)", w_ms, GBps=bytes_ / w_ms / 1e6)
        record(f"wgsl {label}", "torsh-jit CUDA C", c_ms, GBps=bytes_ / c_ms / 1e6)
        record(f"wgsl {label}", "ratio WGSL/CUDA speed", c_ms / w_ms)
        if label.startswith("chain"):          # the elementwise schedule's groups per thread
            from torsh_jit.schedule.gpu import GpuConfig
            for u in (2, 4):
                specs = kw.specs_of(args)
                p0, _ = kw._plan(specs)
                p = compiler.plan(p0.graph, specs, p0.target,
                                  configs=(GpuConfig(threads=256, vec=4, unroll=u),))
                fu = compiler.build(p)
                du = fu.upload(*args)
                record(f"wgsl {label}", f"WGSL, {u} groups of 4 a thread",
                       float(np.median([fu.time(du, repeat=20) for _ in range(7)])) * 1e3)
                del du
        out[label] = {"wgsl": w_ms, "cuda": c_ms}
        del targs, d
    return out


def _timed_config(section, name, fn, args, cfg, ref, tol, R, **extra):
    try:
        call = with_config(fn, args, cfg)
        check(f"{section} {cfg}", call(), ref, tol)
        ms = gpu_ms(call, R)
    except (Exception, SystemExit) as e:     # a schedule that does not fit scores as infinitely slow
        print(f"  {section} {cfg}: {type(e).__name__}: {str(e)[:300]}", flush=True)
        return
    record(section, name, ms, **{k: f(ms) for k, f in extra.items() if f is not None})


def first_call(dev, fn=None):
    """Time one first call of a new function in this process: trace, plan, render, NVRTC,
    load, launch, result. The kernel cache is off, so NVRTC runs."""
    os.environ["TORSH_JIT_CACHE"] = "0"
    from torsh_jit import cache
    if hasattr(cache.get_cache, "cache_clear"):
        cache.get_cache.cache_clear()
    x = [torch.randn(1 << 20, device=dev) for _ in range(3)]
    compiler.LOADED.clear()
    k = tj.kernel(fn or chain).to("cuda")
    n0, ms0 = backend.STATS["compiles"], backend.STATS["compile_ms"]
    prof = None
    if os.environ.get("TJ_FIRST_CALL_PROFILE"):          # a cProfile of the call, to this file
        import cProfile
        prof = cProfile.Profile()
    torch.cuda.synchronize()
    t = time.perf_counter()
    if prof:
        prof.enable()
    y = k(*x)
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t) * 1e3
    if prof:
        prof.disable()
        prof.dump_stats(os.environ["TJ_FIRST_CALL_PROFILE"])
    nv = backend.STATS["compile_ms"] - ms0
    assert backend.STATS["compiles"] == n0 + 1
    if fn is None:
        check("first call", y, chain_ref(*x), 1e-6)
    os.environ.pop("TORSH_JIT_CACHE", None)
    if hasattr(cache.get_cache, "cache_clear"):
        cache.get_cache.cache_clear()
    return {"ms": ms, "nvrtc_ms": nv, "other_ms": ms - nv}


FRESH = 7


def compile_time(dev):
    """First-call compile of the chain, in new processes (torch, cupy and torsh_jit imported,
    CUDA initialised, then the call): "cold", the process's first kernel (one-time imports
    and NVRTC's start-up included), and "warm", after a different kernel (the compile of
    each new function). FRESH of each, medians. Python's bytecode is kept (in a cache of its
    own if this Python writes none) and an untimed first process fills it, as installing a
    package does; that process's time is shown too."""
    import subprocess
    import tempfile
    env = dict(os.environ)
    pyc = None
    if sys.flags.dont_write_bytecode or env.get("PYTHONDONTWRITEBYTECODE"):
        pyc = tempfile.mkdtemp(prefix="tj-pyc-")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pyc

    def child(mode):
        # NVRTC 12.9+ could find the chain compiled by an earlier process in its own disk
        # cache; torsh-jit passes -no-cache, and each process's NVRTC time shows it compiled
        out = subprocess.run([sys.executable, __file__, "--first-call-child", mode],
                             capture_output=True, text=True, check=True, env=env).stdout
        return json.loads(out.strip().splitlines()[-1])

    r = child("cold")
    record("first-call compile (chain)", "first process (no bytecode)", r["ms"],
           nvrtc_ms=r["nvrtc_ms"], other_ms=r["other_ms"])
    summary = {}
    for mode in ("cold", "warm"):
        runs = [child(mode) for _ in range(FRESH)]
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        record("first-call compile (chain)", f"{mode}, median of {FRESH} processes", med["ms"],
               nvrtc_ms=med["nvrtc_ms"], other_ms=med["other_ms"], target_ms=100.0,
               runs=[round(r["ms"], 1) for r in runs], nvrtc_runs=[round(r["nvrtc_ms"], 1) for r in runs])
        summary[mode] = {"median_ms": med["ms"], "runs_ms": [r["ms"] for r in runs],
                         "nvrtc_median_ms": med["nvrtc_ms"]}
    if pyc:
        import shutil
        shutil.rmtree(pyc, ignore_errors=True)
    return summary


def dynamic_section(dev, R, copy_gbs):
    """The same functions compiled exact (dynamic=False), with the batch (axis 0) a symbol
    (dynamic={0: "batch"}: what "auto" makes of a changing batch) and with every dimension
    a symbol (dynamic=True), timed in interleaved rounds: ratio = exact time / dynamic time.
    Then the first call at a batch size the kernel has not seen (host time: bind, no
    compile)."""
    out = {}
    n = 64 << 20
    a, b, c = (torch.randn(n, device=dev) for _ in range(3))
    x = torch.randn(4096, 4096, device=dev)
    w, bb = torch.randn(4096, device=dev), torch.randn(4096, device=dev)
    A = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16)
    B = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16)
    A2 = torch.randn(3000, 2000, device=dev, dtype=torch.bfloat16)
    B2 = torch.randn(2000, 1500, device=dev, dtype=torch.bfloat16)
    rows = [("chain 64M f32", chain, (a, b, c), chain_ref(a, b, c), 1e-6),
            ("softmax 4096x4096", softmax, (x,), torch.softmax(x, -1), 1e-5),
            ("layernorm 4096x4096", layernorm, (x, w, bb), Fn.layer_norm(x, (4096,), w, bb, 1e-5), 1e-5),
            ("gemm bf16 4096", matmul, (A, B), A.float() @ B.float(), 2e-2),
            ("gemm bf16 3000x2000x1500", matmul, (A2, B2), A2.float() @ B2.float(), 2e-2)]
    for name, f, args, ref, tol in rows:
        ks = {"exact": tj.kernel(f, dynamic=False).to("cuda"),
              "batch": tj.kernel(f, dynamic={0: "batch"}).to("cuda"),
              "all": tj.kernel(f, dynamic=True).to("cuda")}
        for label, k in ks.items():
            check(f"{name} {label}", k(*args), ref, tol)
        res = compare({label: (lambda k=k: k(*args)) for label, k in ks.items()}, R)
        record(f"dynamic: {name}", "exact shapes", res["exact"])
        out[name] = {"exact_ms": res["exact"]}
        for label, title in (("batch", 'dynamic={0: "batch"}'), ("all", "dynamic=True")):
            p = ks[label].lower(*args).plan
            record(f"dynamic: {name}", title, res[label],
                   ratio_exact_over_dynamic=res["exact"] / res[label],
                   symbols=",".join(p.symbols), guards=", ".join(map(repr, p.guards)))
            out[name][label] = {"ms": res[label], "ratio": res["exact"] / res[label],
                                "symbols": list(p.symbols), "guards": [repr(g) for g in p.guards]}
    kd = tj.kernel(softmax, dynamic=True).to("cuda")
    kd(torch.randn(3, 1024, device=dev))
    ts = []
    for m in (5, 17, 31, 64, 100, 257, 511, 1000, 1023, 2047, 7, 9, 11):
        xm = torch.randn(m, 1024, device=dev)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        kd(xm)
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    x8 = torch.randn(8, 1024, device=dev)
    kd(x8)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(200):
        kd(x8)
    torch.cuda.synchronize()
    steady = (time.perf_counter() - t0) / 200
    new = float(np.median(ts))
    record("dynamic: first call at a new batch size", "softmax x[n,1024], median of 13 sizes",
           new * 1e3, steady_call_ms=steady * 1e3, compiles=kd.compiles)
    out["new_size_call_us"] = new * 1e6
    out["steady_call_us"] = steady * 1e6
    out["compiles"] = kd.compiles
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no torch.compile")
    ap.add_argument("--only", default="", help="comma-separated sections: compile,copy,chain,rows,sum,gemm,wgsl,sweep "
                    "(sweep, sweep-gemm, sweep-rows: schedules; dynamic: exact against "
                    "symbolic kernels; only when named)")
    ap.add_argument("--json", default="")
    ap.add_argument("--first-call-child", choices=("cold", "warm"), help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    if ns.first_call_child:                      # one new-process sample for compile_time()
        if cp is not None:
            cp.ones(1)
        dev = torch.device("cuda")
        if ns.first_call_child == "warm":        # another kernel first: imports, NVRTC started
            first_call(dev, lambda a, b, c: a * b + c)
        print(json.dumps(first_call(dev)))
        return
    R = 10 if ns.quick else ns.repeat
    only = set(filter(None, ns.only.split(",")))
    want = lambda s: (not only and not s.startswith("sweep")) or s in only       # noqa: E731
    dev = torch.device("cuda")
    summary = {}
    if want("compile"):
        # first, while this process holds no CUDA context: each child has the GPU to itself,
        # as a user's process does
        summary["compile"] = compile_time(dev)
    torch.manual_seed(0)
    if cp is not None:
        cp.ones(1)                               # cupy initialised before any timing
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  "
          f"cupy {cp.__version__ if cp else 'n/a'}  nvrtc {backend.nvrtc_version()}  "
          f"target {tj.parse_target('cuda').name}", flush=True)
    print(backend.device_info(torch.cuda.current_device()).describe(), flush=True)
    compiled = (lambda f: torch.compile(f)) if not ns.quick else None

    n = 64 << 20
    copy_gbs = None
    if want("copy") or want("chain") or want("rows") or want("sum"):
        src = torch.randn(n, device=dev)
        dst = torch.empty_like(src)
        ms = gpu_ms(lambda: dst.copy_(src), R)
        copy_gbs = 2 * n * 4 / ms / 1e6
        record("device copy 64M f32", "torch copy_", ms, GBps=copy_gbs)
        summary["copy_GBps"] = copy_gbs
        del src, dst

    if want("chain"):
        a, b, c = (torch.randn(n, device=dev) for _ in range(3))
        k = tj.kernel(chain).to("cuda")
        ref = chain_ref(a, b, c)
        check("chain", k(a, b, c), ref, 1e-6)
        fns = {}
        bytes_ = 4 * n * 4
        fns["torsh-jit"] = lambda: k(a, b, c)
        if cp is not None:
            ek, (ca, cb, cc), co = cupy_chain((a, b, c))
            check("chain (cupy)", torch.as_tensor(k(ca, cb, cc), device=dev), ref, 1e-6)
            fns["torsh-jit (cupy arrays)"] = lambda: k(ca, cb, cc)
            fns["cupy ElementwiseKernel"] = lambda: ek(ca, cb, cc, co)
        fns["torch eager"] = lambda: chain_ref(a, b, c)
        if compiled:
            tc = compiled(chain_ref)
            tc(a, b, c)
            fns["torch.compile"] = lambda: tc(a, b, c)
        res = compare(fns, R)
        for name, ms in res.items():
            record("chain 64M f32", name, ms, GBps=bytes_ / ms / 1e6,
                   of_copy=(bytes_ / ms / 1e6) / copy_gbs)
        summary["chain"] = res
        del a, b, c, ref

    if want("rows"):
        summary["rows"] = {}
        for shape in ((4096, 4096), (32768, 1024), (1024, 32768)):
            x = torch.randn(*shape, device=dev)
            w = torch.randn(shape[1], device=dev)
            bb = torch.randn(shape[1], device=dev)
            for fname, f, ref_fn, args in (
                    ("softmax", softmax, lambda x: torch.softmax(x, -1), (x,)),
                    ("layernorm", layernorm, lambda x, w, b: Fn.layer_norm(x, (x.shape[-1],), w, b, 1e-5),
                     (x, w, bb))):
                k = tj.kernel(f).to("cuda")
                check(f"{fname} {shape}", k(*args), ref_fn(*args), 1e-5)
                fns = {"torsh-jit": lambda: k(*args), "torch eager": lambda: ref_fn(*args)}
                if compiled:
                    tc = compiled(ref_fn)
                    tc(*args)
                    fns["torch.compile"] = lambda: tc(*args)
                res = compare(fns, R)
                bytes_ = (2 * x.numel() + (2 * shape[1] if fname == "layernorm" else 0)) * 4
                best_peer = min(v for kk, v in res.items() if kk != "torsh-jit")
                for name, ms in res.items():
                    record(f"{fname} {shape[0]}x{shape[1]}", name, ms, GBps=bytes_ / ms / 1e6,
                           of_copy=(bytes_ / ms / 1e6) / copy_gbs if copy_gbs else float("nan"))
                record(f"{fname} {shape[0]}x{shape[1]}", "ratio best-peer/torsh-jit",
                       best_peer / res["torsh-jit"])
                summary["rows"][f"{fname} {shape}"] = res
            del x, w, bb

    if "dynamic" in only:
        summary["dynamic"] = dynamic_section(dev, R, copy_gbs)

    if want("sum"):
        x = torch.randn(n, device=dev)
        k = tj.kernel(total).to("cuda")
        check("sum", k(x).reshape(1), x.double().sum().reshape(1), 1e-5)
        res = compare({"torsh-jit": lambda: k(x), "torch eager": lambda: torch.sum(x)}, R)
        for name, ms in res.items():
            record("sum 64M f32", name, ms, GBps=n * 4 / ms / 1e6,
                   of_copy=(n * 4 / ms / 1e6) / copy_gbs if copy_gbs else float("nan"))
        summary["sum"] = res
        del x

    if want("gemm"):
        summary["gemm"] = {}
        for dt in (torch.bfloat16, torch.float16):
            for size in (4096, 8192):
                a = torch.randn(size, size, device=dev, dtype=dt)
                b = torch.randn(size, size, device=dev, dtype=dt)
                k = tj.kernel(matmul).to("cuda")
                got = k(a, b)
                check(f"gemm {dt} {size}", got, (a.float() @ b.float()), 1e-2)
                flops = 2 * size ** 3
                fns = {"torsh-jit": lambda: k(a, b),
                       "cuBLAS (torch.matmul)": lambda: torch.matmul(a, b)}
                outs = {"torsh-jit": str(got.dtype)[6:], "cuBLAS (torch.matmul)": str(dt)[6:]}
                if dt == torch.bfloat16:
                    # numpy's bfloat16 @ bfloat16 is float32; the cast gives cuBLAS's output dtype
                    k16 = tj.kernel(matmul_to_bf16).to("cuda")
                    check(f"gemm {dt} {size} bf16 out", k16(a, b), (a.float() @ b.float()), 1e-2)
                    fns["torsh-jit, .astype(bfloat16)"] = lambda: k16(a, b)
                    outs["torsh-jit, .astype(bfloat16)"] = "bfloat16"
                res = compare(fns, R, rounds=3)
                for name, ms in res.items():
                    record(f"gemm {str(dt)[6:]} {size}", name, ms, TFLOPs=flops / ms / 1e9,
                           out_dtype=outs[name])
                record(f"gemm {str(dt)[6:]} {size}", "ratio torsh-jit/cuBLAS",
                       res["cuBLAS (torch.matmul)"] / res["torsh-jit"])
                if dt == torch.bfloat16:
                    record(f"gemm {str(dt)[6:]} {size}", "ratio torsh-jit bf16 out/cuBLAS",
                           res["cuBLAS (torch.matmul)"] / res["torsh-jit, .astype(bfloat16)"])
                summary["gemm"][f"{dt} {size}"] = res
                del a, b, got
        size = 4096
        x = torch.randn(size, size, device=dev, dtype=torch.float16)
        w = torch.randn(size, size, device=dev, dtype=torch.float16) / 64
        bias = torch.randn(size, device=dev, dtype=torch.float16)
        k = tj.kernel(linear_relu).to("cuda")
        low = k.lower(x, w, bias)
        check("relu(x@w+b)", k(x, w, bias), torch.relu(x.float() @ w.float() + bias.float()), 1e-2)
        fns = {"torsh-jit": lambda: k(x, w, bias),
               "torch eager": lambda: torch.relu(x @ w + bias),
               "cuBLAS matmul alone": lambda: torch.matmul(x, w)}
        if compiled:
            tc = compiled(lambda x, w, b: torch.relu(x @ w + b))
            tc(x, w, bias)
            fns["torch.compile"] = lambda: tc(x, w, bias)
        res = compare(fns, R, rounds=3)
        for name, ms in res.items():
            record("relu(x@w+b) f16 4096", name, ms, TFLOPs=2 * size ** 3 / ms / 1e9,
                   kernels=low.n_kernels if name == "torsh-jit" else "")
        record("relu(x@w+b) f16 4096", "ratio torsh-jit/cuBLAS", res["cuBLAS matmul alone"] / res["torsh-jit"])
        summary["linear_relu"] = res

    if want("wgsl"):
        summary["wgsl"] = wgsl_section(dev, R)

    if want("sweep") or want("sweep-gemm"):
        sweep_gemm(dev, R)
    if want("sweep") or want("sweep-rows"):
        sweep_rows(dev, R)
    if want("sweep") or want("sweep-ew"):
        sweep_elementwise(dev, R)

    if ns.json:
        Path(ns.json).write_text(json.dumps({"rows": ROWS, "summary": summary}, indent=1, default=str))


if __name__ == "__main__":
    main()
