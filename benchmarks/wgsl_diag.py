"""Diagnostics of the wgsl target on this machine's adapter (a GPU's Vulkan driver, or lavapipe).

    python benchmarks/wgsl_diag.py [--big] [--only floordiv,reduce,subnormal,math,time]

floordiv: integer // and % over every sign (naga's % is OpSRem, undefined for negative
operands on Vulkan); reduce: the op corpus's reductions (any, all, argmax, softmax,
layernorm...) with rows combined by subgroup shuffles and by the workgroup-memory tree;
subnormal: what the driver does with float32 subnormals; math: the largest error in ulp of
each function against numpy's float64 rounded to float32 (2^22 arguments each); time: the
chain and softmax with both combines (--big: 64M elements and 4096 rows of 4096, the sizes
of benchmarks/gpu.py; else 4M and 1024 rows).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "targets"))
import torsh_jit as tj  # noqa: E402
from torsh_jit.backends.wgsl import device as wb  # noqa: E402


def ulp_distance(a, b):
    """|a - b| in float32 ulps (NaN == NaN; NaN against a number: 2^40)."""
    def key(x):
        i = x.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    d = np.abs(key(a) - key(b))
    na, nb = np.isnan(a), np.isnan(b)
    d[na & nb] = 0
    d[na ^ nb] = 1 << 40
    return d


def floordiv():
    a = np.repeat(np.arange(-60, 61, dtype=np.int32), 41)
    b = np.tile(np.arange(-20, 21, dtype=np.int32), 121)
    edge = np.array([[24, -3], [78, -6], [-73, 73], [-2**31, -1], [-2**31, 1], [2**31 - 1, -1],
                     [-2**31, 2**31 - 1], [-2**31 + 1, 2**31 - 1], [7, 0], [-7, 0]], np.int64)
    a = np.r_[a, edge[:, 0].astype(np.int32)]
    b = np.r_[b, edge[:, 1].astype(np.int32)]
    q, r = tj.kernel(lambda a, b: (a // b, a % b)).to("wgsl")(a, b)
    with np.errstate(all="ignore"):
        wq, wr = a // b, a % b
    for name, g, w in (("//", q, wq), ("%", r, wr)):
        bad = np.flatnonzero(g != w)
        print(f"  int32 {name}: {len(bad)} of {len(a)} differ from numpy"
              + "".join(f"\n    {a[i]} {name} {b[i]}: {g[i]} (numpy {w[i]})" for i in bad[:8]))


def reduce():
    from op_corpus import _reductions, _ints, reference
    for sg in (True, False):
        wb.SUBGROUPS = sg
        for case in (_reductions(False), _ints("int32", "float32")):
            args = case.make(np.random.default_rng(7))
            got = tj.kernel(case.fn(tj)).to("wgsl")(*args)
            want = reference(case.fn, args)
            bad = []
            for i, (g, w) in enumerate(zip(got, want)):
                tol = case.tol(i)
                if w.dtype.kind == "f" and (tol.rtol or tol.atol):
                    e = float(np.finfo(w.dtype).eps)
                    ok = np.isclose(g, w, rtol=tol.rtol * e, atol=tol.atol * e, equal_nan=True)
                else:
                    ok = (g == w) | ((g != g) & (w != w))
                if not np.all(ok):
                    bad.append(f"{case.label(i)} ({int(np.size(ok) - np.sum(ok))} of {np.size(ok)})")
            print(f"  {case.name}, subgroups {sg}: " + ("all outputs match numpy" if not bad else
                                                        "DIFFER: " + ", ".join(bad)))
    wb.SUBGROUPS = None


def subnormal():
    t = np.float32(1.4e-45)
    x = np.array([t, -t, 3 * t, np.float32(1.2e-38), np.float32(1e-39)], np.float32)
    outs = tj.kernel(lambda x: (-x, x + x, tj.sign(x), tj.floor(x), tj.ceil(x), x * 0.5,
                                tj.sqrt(tj.abs(x)), tj.log(tj.abs(x)))).to("wgsl")(x)
    with np.errstate(all="ignore"):
        want = (-x, x + x, np.sign(x), np.floor(x), np.ceil(x), x * np.float32(0.5),
                np.sqrt(np.abs(x)), np.log(np.abs(x)))
    for name, g, w in zip(("neg", "x + x", "sign", "floor", "ceil", "x * 0.5", "sqrt|x|", "log|x|"),
                          outs, want):
        print(f"  {name:8s} got {g.tolist()}\n  {'':8s} numpy {w.tolist()}")


FUNCS = {"exp": (np.exp, (-104, 89)), "exp2": (np.exp2, (-150, 128)), "expm1": (np.expm1, (-20, 30)),
         "tanh": (np.tanh, (-10, 10)), "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), (-30, 30)),
         "sin": (np.sin, (-100, 100)), "cos": (np.cos, (-100, 100)), "tan": (np.tan, (-100, 100)),
         "log": (np.log, (1e-3, 1e3)), "log2": (np.log2, (1e-3, 1e3)), "log1p": (np.log1p, (-0.9, 1e3)), "erf": (None, (-4, 4))}


def math(n=1 << 20):
    rng = np.random.default_rng(1)
    for name, (ref, (lo, hi)) in FUNCS.items():
        if ref is None:
            try:
                from scipy.special import erf as ref
            except ImportError:
                continue
        x = np.concatenate([rng.uniform(lo, hi, n), rng.standard_normal(n),
                            rng.standard_normal(n) * 1e-3]).astype(np.float32)
        if name in ("sin", "cos", "tan"):
            x = np.r_[x, rng.uniform(-6000, 6000, n), rng.uniform(-1e6, 1e6, n // 4),
                      np.arange(-3800, 3800) * (np.pi / 2)].astype(np.float32)
        if name.startswith("log"):
            x = np.abs(x) + np.float32(0 if name == "log1p" else lo)
        got = tj.kernel(getattr(tj, name)).to("wgsl")(x)
        with np.errstate(all="ignore"):
            want = ref(x.astype(np.float64)).astype(np.float32)
        fine = np.abs(want) >= np.finfo(np.float32).tiny      # flushed subnormals aside
        d = ulp_distance(got, want)[fine]
        i = int(np.argmax(d))
        xi = x[fine][i]
        print(f"  {name:8s} max {int(d.max())} ulp (x = {xi!r}: {got[fine][i]!r}, numpy "
              f"{want[fine][i]!r}); over 2 ulp: {int((d > 2).sum())} of {d.size}")


def timing(big: bool):
    def chain(a, b, c):
        return tj.exp(a) * b + tj.sin(c) * 0.5 - tj.tanh(a * c)

    def softmax(x):
        e = tj.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    rng = np.random.default_rng(0)
    n = (64 if big else 4) << 20
    a, b, c = (rng.standard_normal(n, dtype=np.float32) for _ in range(3))
    x = rng.standard_normal((4096 if big else 1024, 4096), dtype=np.float32)
    for sg in (True, False):
        wb.SUBGROUPS = sg
        for label, fn, args, nbytes in (("chain", chain, (a, b, c), 16 * n),
                                        ("softmax", softmax, (x,), 2 * x.nbytes)):
            if label == "chain" and not sg:
                continue                               # no reduction: the same kernel
            k = tj.kernel(fn).to("wgsl")
            k(*args)
            f = k.built_variants(*args)["wgsl"]
            d = f.upload(*args)
            ms = float(np.median([f.time(d, repeat=20) for _ in range(7)])) * 1e3
            print(f"  {label} {'x'.join(map(str, args[0].shape))}{', subgroups ' + str(sg) if label == 'softmax' else ''}: "
                  f"{ms:.3f} ms, {nbytes / ms / 1e6:.0f} GB/s", flush=True)
            del d
    wb.SUBGROUPS = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--only", default="floordiv,reduce,subnormal,math,time")
    args = ap.parse_args()
    if not wb.gpu_available():
        raise SystemExit("no wgpu adapter here (pip install wgpu; a Vulkan driver or lavapipe)")
    g = wb.gpu()
    print(f"adapter: {wb.adapter_description()}; subgroup feature: {'subgroup' in g[2].features}; "
          f"subgroups used: {wb.use_subgroups()}; subnormals may flush: {wb.flushes_subnormals(None)}")
    steps = {"floordiv": floordiv, "reduce": reduce, "subnormal": subnormal, "math": math,
             "time": lambda: timing(args.big)}
    for s in args.only.split(","):
        t0 = time.perf_counter()
        print(f"{s}:", flush=True)
        steps[s]()
        print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
