"""Autotuning on this machine: matmul 1024^2 float32 and softmax 4096x1024 float32.

For each: the tuning as a user runs it (60 s budget, fresh cache), the default and tuned
kernels timed again afterwards through the ordinary call path (interleaved, inputs rotated),
and an exhaustive search of the whole space (reusing the tuning's records, so only what the
tuning skipped is measured) to show how far the default is from the best there is.

    PYTHONPATH=. python benchmarks/tune.py [--budget-s 60] [--keep-cache]

Criterion (issue 7): tuning <= 60 s, and tuned >= 1.15x default or default within 5% of the
exhaustive best.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


def mm(a, b):
    return a @ b


def mm_to_bf16(a, b):
    """a @ b written as bfloat16, as cuBLAS writes it (for `torsh-jit tune` on a GPU; numpy's
    bf16 @ bf16 is float32)."""
    import ml_dtypes
    return (a @ b).astype(ml_dtypes.bfloat16)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def call_time(fns: dict, sets: list, rounds: int = 7, per: int = 5) -> dict:
    """Median seconds per call of each kernel, interleaved round by round, inputs rotated."""
    ts = {k: [] for k in fns}
    for f in fns.values():
        f(*sets[0])
        f(*sets[1 % len(sets)])
    i = 0
    for _ in range(rounds):
        for k, f in fns.items():
            for _ in range(per):
                args = sets[i % len(sets)]
                i += 1
                t0 = time.perf_counter()
                f(*args)
                ts[k].append(time.perf_counter() - t0)
            time.sleep(0.01)
    return {k: statistics.median(v) for k, v in ts.items()}


def bench(name, fn, shapes, budget_s):
    import torsh_jit as tj
    from torsh_jit import tune as T
    rng = np.random.default_rng(0)
    args = [np.zeros(s, np.float32) for s in shapes]
    print(f"\n=== {name}: {fn.__name__} {' x '.join(str(s) for s in shapes)} float32 ===", flush=True)
    m0 = T.STATS["measured"]
    res = T.tune(fn, args, budget_s=budget_s)
    print(f"tuning: {res.strategy} search over {res.candidates} candidates, {res.fresh} measured, "
          f"wall {res.wall_s:.1f} s (budget {budget_s:g} s)")
    print(f"default {res.default_time_s * 1e3:.3f} ms, tuned {res.time_s * 1e3:.3f} ms, "
          f"speedup {res.speedup:.2f}x (tuner's own timing)")
    print("chosen: " + "; ".join(map(str, res.configs)))
    print(res.format_table(8))
    if res.busy_note():
        print(res.busy_note())

    # the two kernels as a user gets them: plain @tj.kernel against @tj.kernel(autotune=True)
    sets = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(4)]
    plain = tj.kernel(fn)
    tuned = tj.kernel(fn, autotune=True)
    before = T.STATS["measured"]
    tuned(*sets[0])
    assert T.STATS["measured"] == before, "the autotuned kernel must reuse the stored tuning"
    ct = call_time({"default": plain, "tuned": tuned}, sets)
    print(f"call path (interleaved medians): default {ct['default'] * 1e3:.3f} ms, "
          f"tuned {ct['tuned'] * 1e3:.3f} ms, speedup {ct['default'] / ct['tuned']:.2f}x")

    # exhaustive: every candidate, the tuning's measurements reused
    ex = T.tune(fn, args, budget_s=600, exhaustive=True, progress=True)
    print(f"exhaustive: {len(ex.table)} of {ex.candidates} candidates measured "
          f"({ex.fresh} new, {ex.reused} reused from the tuning), {ex.wall_s:.1f} s")
    print(ex.format_table(12))
    if ex.busy_note():
        print(ex.busy_note())
    best = min(t for _, t, _ in ex.table)
    within = ex.default_time_s / best - 1
    print(f"default vs exhaustive best: {ex.default_time_s * 1e3:.3f} vs {best * 1e3:.3f} ms "
          f"(default {within * 100:+.1f}% slower)")
    print(ex.text_plot(rows=20))
    ok_time = res.wall_s <= 60
    ok_speed = ct["default"] / ct["tuned"] >= 1.15 or within <= 0.05
    print(f"criterion: tuning {res.wall_s:.1f} s <= 60 s: {'yes' if ok_time else 'NO'}; "
          f"tuned >= 1.15x default ({ct['default'] / ct['tuned']:.2f}x) or default within 5% of "
          f"the exhaustive best ({within * 100:+.1f}%): {'yes' if ok_speed else 'NO'}")
    return ok_time and ok_speed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-s", type=float, default=60.0)
    ap.add_argument("--keep-cache", action="store_true", help="use the usual cache (reuses earlier tunings)")
    ns = ap.parse_args()
    if not ns.keep_cache:
        os.environ["TORSH_JIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="torsh-jit-tune-bench-")
    from torsh_jit.schedule.threads import num_threads
    from torsh_jit.runtime.hardware import host_target
    from torsh_jit.tune.records import _cpu_model
    print(f"machine: {_cpu_model()}, {num_threads()} threads, target {host_target().name}; "
          f"cache {os.environ.get('TORSH_JIT_CACHE_DIR')}")
    ok = bench("matmul", mm, [(1024, 1024), (1024, 1024)], ns.budget_s)
    ok &= bench("softmax", softmax, [(4096, 1024)], ns.budget_s)
    print("\nall criteria met" if ok else "\nsome criterion NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
