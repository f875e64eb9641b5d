"""torsh-jit against numpy, numba and numexpr on this CPU, side by side in one run.

    python benchmarks/cpu.py            # the table, medians of --repeat runs
    python benchmarks/cpu.py --json out.json

Every peer runs with all the threads this process may use. Times are medians of
several runs after a warm-up; ratios are peer time / torsh-jit time (above 1:
torsh-jit is faster). The memory-bound limit is numpy's own copy bandwidth
(np.copyto into an existing array), measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torsh_jit as tj  # noqa: E402

try:
    import numba
    from numba import njit, prange
except ImportError:   # the table says n/a
    numba = None
try:
    import numexpr as ne
except ImportError:
    ne = None


def median_time(f, repeat: int, number: int = 1, settle: float = 0.3) -> float:
    # other libraries' worker threads spin for a while after their last job (OpenBLAS,
    # OpenMP, ours): let them go to sleep so nobody is timed against a spinning neighbour
    time.sleep(settle)
    for _ in range(3):      # warm-up: first-touch of fresh outputs settles after a few calls
        f()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        ts.append((time.perf_counter() - t0) / number)
    ts.sort()
    return ts[len(ts) // 2]


# -- the workloads, as plain numpy (also what torsh-jit traces) ----------------------------------
def triad(a, b, c):
    return a * b + c


def chain(a, b, c):
    return np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def total(a):
    return a.sum()


def matmul(a, b):
    return a @ b


def centre(a, b):
    return a - b.mean()       # a reduction of b used over a: computed once, then elementwise


# -- numba versions (parallel=True, fastmath=True) --------------------------------------------------
if numba is not None:
    @njit(parallel=True, fastmath=True, cache=False)
    def nb_triad(a, b, c):
        out = np.empty_like(a)
        for i in prange(a.size):
            out[i] = a[i] * b[i] + c[i]
        return out

    @njit(parallel=True, fastmath=True)
    def nb_chain(a, b, c):
        out = np.empty_like(a)
        for i in prange(a.size):
            out[i] = np.exp(a[i]) * b[i] + np.sin(c[i]) * np.float32(0.5) - np.tanh(a[i] * c[i])
        return out

    @njit(parallel=True, fastmath=True)
    def nb_softmax(x):
        out = np.empty_like(x)
        for r in prange(x.shape[0]):
            m = x[r, 0]
            for j in range(x.shape[1]):
                m = max(m, x[r, j])
            s = np.float32(0)
            for j in range(x.shape[1]):
                e = np.exp(x[r, j] - m)
                out[r, j] = e
                s += e
            inv = np.float32(1) / s
            for j in range(x.shape[1]):
                out[r, j] *= inv
        return out

    @njit(parallel=True, fastmath=True)
    def nb_layernorm(x, w, b):
        out = np.empty_like(x)
        n = x.shape[1]
        for r in prange(x.shape[0]):
            mu = np.float32(0)
            for j in range(n):
                mu += x[r, j]
            mu /= n
            var = np.float32(0)
            for j in range(n):
                d = x[r, j] - mu
                var += d * d
            var /= n
            inv = np.float32(1) / np.sqrt(var + np.float32(1e-5))
            for j in range(n):
                out[r, j] = (x[r, j] - mu) * inv * w[j] + b[j]
        return out

    @njit(parallel=True, fastmath=True)
    def nb_sum(a):
        s = np.float32(0)
        for i in prange(a.size):
            s += a[i]
        return s

    @njit(parallel=True, fastmath=True)
    def nb_matmul(a, b):
        return a @ b

    @njit(parallel=True, fastmath=True)
    def nb_centre(a, b):
        m = np.float32(0)
        for i in prange(b.size):
            m += b[i]
        m /= b.size
        out = np.empty_like(a)
        for i in prange(a.size):
            out[i] = a[i] - m
        return out


def child_warm_start(cache_dir: str) -> float:
    """Seconds from the first call to its result in a new process whose kernel is on disk."""
    code = (
        "import time, numpy as np, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import torsh_jit as tj\n"
        "a = np.ones(1 << 12, np.float32)\n"
        "@tj.kernel\n"
        "def chain(a, b, c):\n"
        "    return np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)\n"
        "t0 = time.perf_counter(); chain(a, a, a); t1 = time.perf_counter()\n"
        "from torsh_jit.backends.llvm import build as llvm_cpu\n"
        "print(t1 - t0, llvm_cpu.STATS['codegen'])\n")
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    ap.add_argument("--extended", action="store_true",
                    help="also float64 variants, rmsnorm and matmul at 256/1024/2048 and 768x3072x768")
    ns = ap.parse_args(argv)
    R = ns.repeat
    rng = np.random.default_rng(0)
    n = 1 << 20 if ns.quick else 16 << 20
    rows = 256 if ns.quick else 4096
    mm = 256 if ns.quick else 1024
    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    x = rng.standard_normal((rows, 1024)).astype(np.float32)
    w, bias = rng.standard_normal(1024).astype(np.float32), rng.standard_normal(1024).astype(np.float32)
    A, B = (rng.standard_normal((mm, mm)).astype(np.float32) for _ in range(2))
    out = np.empty_like(a)

    from torsh_jit.schedule.threads import num_threads
    print(f"torsh-jit {tj.__version__} on {tj.available_targets()[0]}, {num_threads()} threads; "
          f"numpy {np.__version__}" + (f", numba {numba.__version__}" if numba else ", numba n/a")
          + (f", numexpr {ne.__version__} ({ne.nthreads} threads)" if ne else ", numexpr n/a"))
    print(f"medians of {R} runs; ratio = peer time / torsh-jit time\n")

    results = {}
    copy_t = median_time(lambda: np.copyto(out, a), R)
    copy_bw = 2 * a.nbytes / copy_t
    results["copy"] = {"numpy_copyto_ms": copy_t * 1e3, "GBps": copy_bw / 1e9}
    print(f"numpy copy bandwidth (np.copyto, {a.nbytes >> 20} MiB): {copy_bw / 1e9:.1f} GB/s\n")

    k_triad, k_chain, k_soft, k_ln, k_sum, k_mm, k_centre = (
        tj.kernel(f) for f in (triad, chain, softmax, layernorm, total, matmul, centre))
    rows_out = []

    def row(name, tj_f, peers, extra=""):
        t = median_time(tj_f, R)
        r = {"torsh_jit_ms": t * 1e3}
        cells = [f"{name:<26}", f"{t * 1e3:>9.2f}"]
        for pname, pf in peers:
            if pf is None:
                cells.append(f"{'n/a':>16}")
                continue
            tp = median_time(pf, R)
            r[f"{pname}_ms"] = tp * 1e3
            r[f"vs_{pname}"] = tp / t
            cells.append(f"{tp * 1e3:>8.2f} {tp / t:>6.2f}x")
        peers_t = [v for k, v in r.items() if k.endswith("_ms") and k != "torsh_jit_ms"]
        if peers_t:
            r["vs_best_peer"] = min(peers_t) / (t * 1e3)
            cells.append(f"{r['vs_best_peer']:>7.2f}x")
        results[name] = r
        print(" ".join(cells) + (f"  {extra}" if extra else ""))
        return t

    print(f"{'workload':<26} {'torsh-jit':>9} {'numpy':>16} {'numba':>16} {'numexpr':>16} {'vs best':>8}")
    nb = numba is not None
    t = row("triad a*b+c 16M f32", lambda: k_triad(a, b, c),
            [("numpy", lambda: triad(a, b, c)), ("numba", (lambda: nb_triad(a, b, c)) if nb else None),
             ("numexpr", (lambda: ne.evaluate("a*b+c", local_dict=dict(a=a, b=b, c=c))) if ne else None)])
    t_out = median_time(lambda: k_triad(a, b, c, out=out), R)
    triad_bw = 4 * a.nbytes / t_out
    results["triad_bandwidth"] = {"out_ms": t_out * 1e3, "GBps": triad_bw / 1e9,
                                  "fraction_of_copy": triad_bw / copy_bw,
                                  "fresh_output_GBps": 4 * a.nbytes / t / 1e9}
    print(f"{'  triad into out=':<26} {t_out * 1e3:>9.2f}  {triad_bw / 1e9:.1f} GB/s = "
          f"{triad_bw / copy_bw:.2f}x the copy bandwidth (fresh output: "
          f"{4 * a.nbytes / t / 1e9:.1f} GB/s)")
    row("chain 16M f32", lambda: k_chain(a, b, c),
        [("numpy", lambda: chain(a, b, c)), ("numba", (lambda: nb_chain(a, b, c)) if nb else None),
         ("numexpr", (lambda: ne.evaluate("exp(a)*b + sin(c)*0.5 - tanh(a*c)", local_dict=dict(a=a, b=b, c=c))) if ne else None)])
    row(f"softmax {rows}x1024", lambda: k_soft(x),
        [("numpy", lambda: softmax(x)), ("numba", (lambda: nb_softmax(x)) if nb else None),
         ("numexpr", None)])
    row(f"layernorm {rows}x1024", lambda: k_ln(x, w, bias),
        [("numpy", lambda: layernorm(x, w, bias)), ("numba", (lambda: nb_layernorm(x, w, bias)) if nb else None),
         ("numexpr", None)])
    row("sum 16M f32", lambda: k_sum(a),
        [("numpy", lambda: total(a)), ("numba", (lambda: nb_sum(a)) if nb else None),
         ("numexpr", (lambda: ne.evaluate("sum(a)", local_dict=dict(a=a))) if ne else None)])
    a1, b1 = a[:1 << 20], b[:1 << 20]
    row("a - b.mean() 1M f32", lambda: k_centre(a1, b1),
        [("numpy", lambda: centre(a1, b1)), ("numba", (lambda: nb_centre(a1, b1)) if nb else None),
         ("numexpr", None)])
    row(f"matmul {mm}^2 f32", lambda: k_mm(A, B),
        [("numpy", lambda: matmul(A, B)), ("numba", (lambda: nb_matmul(A, B)) if nb else None),
         ("numexpr", None)])

    if ns.extended:
        def rmsnorm(x, w):
            return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-6) * w
        k_rms = tj.kernel(rmsnorm)
        row(f"rmsnorm {rows}x1024 f32", lambda: k_rms(x, w), [("numpy", lambda: rmsnorm(x, w))])
        a64, b64, c64 = (v.astype(np.float64) for v in (a, b, c))
        x64, w64, bias64 = x.astype(np.float64), w.astype(np.float64), bias.astype(np.float64)
        row("triad 16M f64", lambda: k_triad(a64, b64, c64),
            [("numpy", lambda: triad(a64, b64, c64)), ("numba", (lambda: nb_triad(a64, b64, c64)) if nb else None),
             ("numexpr", (lambda: ne.evaluate("a*b+c", local_dict=dict(a=a64, b=b64, c=c64))) if ne else None)])
        row("chain 16M f64", lambda: k_chain(a64, b64, c64),
            [("numpy", lambda: chain(a64, b64, c64)), ("numba", (lambda: nb_chain(a64, b64, c64)) if nb else None),
             ("numexpr", (lambda: ne.evaluate("exp(a)*b + sin(c)*0.5 - tanh(a*c)",
                                              local_dict=dict(a=a64, b=b64, c=c64))) if ne else None)])
        row(f"softmax {rows}x1024 f64", lambda: k_soft(x64),
            [("numpy", lambda: softmax(x64)), ("numba", (lambda: nb_softmax(x64)) if nb else None)])
        row(f"layernorm {rows}x1024 f64", lambda: k_ln(x64, w64, bias64),
            [("numpy", lambda: layernorm(x64, w64, bias64)),
             ("numba", (lambda: nb_layernorm(x64, w64, bias64)) if nb else None)])
        row("sum 16M f64", lambda: k_sum(a64), [("numpy", lambda: total(a64)),
                                                 ("numba", (lambda: nb_sum(a64)) if nb else None)])
        for (m_, k_, n_) in [(256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048), (768, 3072, 768)]:
            for dt in (np.float32, np.float64):
                P = rng.standard_normal((m_, k_)).astype(dt)
                Q = rng.standard_normal((k_, n_)).astype(dt)
                row(f"matmul {m_}x{k_}x{n_} {np.dtype(dt).name[5:] and 'f' + np.dtype(dt).name[5:]}",
                    lambda: k_mm(P, Q), [("numpy", lambda: matmul(P, Q))])

    # compile times
    print()
    with tempfile.TemporaryDirectory() as d:
        old = os.environ.get("TORSH_JIT_CACHE_DIR")
        os.environ["TORSH_JIT_CACHE_DIR"] = d
        colds = []
        for i in range(5):
            # a fresh function object and an empty cache each time: trace, fuse, render, LLVM, load
            os.environ["TORSH_JIT_CACHE_DIR"] = os.path.join(d, f"cold{i}")
            fresh = tj.kernel(lambda a, b, c: np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c))
            small = np.ones(1000 + i, np.float32)
            t0 = time.perf_counter()
            fresh(small, small, small)
            colds.append(time.perf_counter() - t0)
        cold = sorted(colds)[len(colds) // 2]
        warm_dir = os.path.join(d, "warm")
        os.environ["TORSH_JIT_CACHE_DIR"] = warm_dir
        child_warm_start(warm_dir)                    # populate
        warms = [child_warm_start(warm_dir) for _ in range(5)]
        warm = sorted(w for w, _ in warms)[2]
        codegens = max(cg for _, cg in warms)
        if old is None:
            os.environ.pop("TORSH_JIT_CACHE_DIR")
        else:
            os.environ["TORSH_JIT_CACHE_DIR"] = old
    results["compile"] = {"cold_chain_ms": cold * 1e3, "warm_start_new_process_ms": warm * 1e3,
                          "warm_start_codegens": codegens}
    print(f"cold compile of the chain (trace..LLVM..load): {cold * 1e3:.1f} ms (median of 5)")
    print(f"warm start from the disk cache, new process:  {warm * 1e3:.1f} ms "
          f"({codegens} LLVM code generations)")

    s8 = [rng.standard_normal(8).astype(np.float32) for _ in range(3)]
    k_triad(*s8)
    per = median_time(lambda: k_triad(*s8), R, number=20000)
    per_np = median_time(lambda: triad(*s8), R, number=20000)
    results["overhead"] = {"torsh_jit_us": per * 1e6, "numpy_us": per_np * 1e6}
    print(f"per-call overhead, triad on 8 elements: {per * 1e6:.2f} us (numpy a*b+c: {per_np * 1e6:.2f} us)")
    if ns.json:
        Path(ns.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
