"""Shape-polymorphic kernels against exact-shape ones on this CPU, side by side in one run.

    python benchmarks/dynamic.py                 # the table, medians of --repeat runs
    python benchmarks/dynamic.py --json out.json

For each row of benchmarks/cpu.py, the same function compiled with dynamic=False (every
size exact), with the batch (axis 0) a symbol (dynamic={0: "batch"}: what the default
"auto" makes of a changing batch) and with every dimension a symbol (dynamic=True): ratio =
exact time / dynamic time (1.00: the same speed; below 1: the dynamic kernel is slower). Then
what a call on a size the kernel has not seen costs: the dynamic kernel binds its symbols
(no compile); the exact one traces, plans and loads (LLVM code generation skipped where
the disk cache has it: the table gives both, cold and warm).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import torsh_jit as tj  # noqa: E402
from cpu import centre, chain, layernorm, matmul, median_time, softmax, total, triad  # noqa: E402


def rows(rng, quick: bool):
    n = 1 << 20 if quick else 16 << 20
    r = 256 if quick else 4096
    mm = 256 if quick else 1024
    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    x = rng.standard_normal((r, 1024)).astype(np.float32)
    w, bias = (rng.standard_normal(1024).astype(np.float32) for _ in range(2))
    A, B = (rng.standard_normal((mm, mm)).astype(np.float32) for _ in range(2))
    xt = np.ascontiguousarray(x.T).T                      # column-major (4096, 1024)
    return [
        (f"triad a*b+c {n >> 20}M f32", triad, (a, b, c)),
        (f"chain {n >> 20}M f32", chain, (a, b, c)),
        (f"softmax {r}x1024", softmax, (x,)),
        (f"layernorm {r}x1024", layernorm, (x, w, bias)),
        (f"sum {n >> 20}M f32", total, (a,)),
        ("a - b.mean() 1M f32", centre, (a[:1 << 20], b[:1 << 20])),
        (f"matmul {mm}^2 f32", matmul, (A, B)),
        (f"column sum {r}x1024", lambda v: v.sum(axis=0), (x,)),
        (f"softmax {r}x1024 column-major", softmax, (xt,)),
    ]


def new_size_calls(dynamic, sizes, cache_dir: str) -> float:
    """Median time of the first call at each of `sizes` (after one call at another size)."""
    os.environ["TORSH_JIT_CACHE_DIR"] = cache_dir
    k = tj.kernel(lambda x, w: tj.exp(x - x.max(axis=-1, keepdims=True)) * w, dynamic=dynamic)
    w = np.ones(256, np.float32)
    k(np.ones((3, 256), np.float32), w)
    k(np.ones((4, 256), np.float32), w)             # "auto": the batch becomes a symbol here
    ts = []
    for n in sizes:
        x = np.ones((n, 256), np.float32)
        t0 = time.perf_counter()
        k(x, w)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    ns = ap.parse_args(argv)
    R = ns.repeat
    rng = np.random.default_rng(0)
    from torsh_jit.schedule.threads import num_threads
    print(f"torsh-jit {tj.__version__} on {tj.available_targets()[0]}, {num_threads()} threads")
    print(f"medians of {R} runs; ratio = exact-shape time / dynamic time\n")
    print(f"{'workload':<32} {'exact ms':>9} {'batch ms':>9} {'ratio':>6} {'all ms':>9} "
          f"{'ratio':>6}  symbols of dynamic=True; guards")
    results = {}
    for name, f, args in rows(rng, ns.quick):
        ks = {"exact": tj.kernel(f, dynamic=False), "batch": tj.kernel(f, dynamic={0: "batch"}),
              "all": tj.kernel(f, dynamic=True)}
        want = ks["exact"](*args)
        for k in ks.values():
            np.testing.assert_allclose(k(*args), want, rtol=1e-5, atol=1e-3)
        # interleaved rounds, each contender's median of its rounds
        per = {label: [] for label in ks}
        for _ in range(3):
            for label, k in ks.items():
                per[label].append(median_time(lambda: k(*args), R))
        t = {label: sorted(v)[1] for label, v in per.items()}
        p = ks["all"].lower(*args).plan
        results[name] = {"exact_ms": t["exact"] * 1e3, "batch_ms": t["batch"] * 1e3,
                         "all_ms": t["all"] * 1e3, "ratio_batch": t["exact"] / t["batch"],
                         "ratio_all": t["exact"] / t["all"], "symbols": list(p.symbols),
                         "guards": [repr(g) for g in p.guards]}
        print(f"{name:<32} {t['exact'] * 1e3:>9.3f} {t['batch'] * 1e3:>9.3f} "
              f"{t['exact'] / t['batch']:>5.2f}x {t['all'] * 1e3:>9.3f} {t['exact'] / t['all']:>5.2f}x  "
              f"{','.join(p.symbols) or '-'}; {len(p.guards)}")

    print()
    sizes = [int(v) for v in rng.choice(np.arange(5, 200), 25, replace=False)]
    old = os.environ.get("TORSH_JIT_CACHE_DIR")
    with tempfile.TemporaryDirectory() as d:
        t_dyn = new_size_calls(True, sizes, os.path.join(d, "dyn"))
        t_auto = new_size_calls("auto", sizes, os.path.join(d, "auto"))
        t_cold = new_size_calls(False, sizes, os.path.join(d, "cold"))
        t_warm = new_size_calls(False, sizes, os.path.join(d, "cold"))   # the same cache, filled
    if old is None:
        os.environ.pop("TORSH_JIT_CACHE_DIR", None)
    else:
        os.environ["TORSH_JIT_CACHE_DIR"] = old
    k = tj.kernel(lambda x, w: tj.exp(x - x.max(axis=-1, keepdims=True)) * w, dynamic=True)
    x, w = np.ones((8, 256), np.float32), np.ones(256, np.float32)
    k(x, w)
    steady = median_time(lambda: k(x, w), R, number=2000)
    results["new_size_call"] = {"dynamic_true_us": t_dyn * 1e6, "dynamic_auto_us": t_auto * 1e6,
                                "exact_cold_cache_us": t_cold * 1e6,
                                "exact_warm_cache_us": t_warm * 1e6,
                                "steady_call_us": steady * 1e6}
    print(f"first call at a new batch size (x[n,256] softmax-like, median of {len(sizes)} sizes):")
    print(f"  dynamic=True   {t_dyn * 1e6:9.1f} us   (a call at a size seen before, 8 rows: "
          f"{steady * 1e6:.1f} us)")
    print(f"  dynamic='auto' {t_auto * 1e6:9.1f} us   (after its one recompile)")
    print(f"  dynamic=False  {t_cold * 1e6:9.1f} us   (a compile per size, empty disk cache)")
    print(f"  dynamic=False  {t_warm * 1e6:9.1f} us   (a compile per size, objects in the disk cache)")
    if ns.json:
        Path(ns.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
