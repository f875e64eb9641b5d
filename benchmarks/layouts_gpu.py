"""The layouts matrix on an NVIDIA GPU: torsh-jit against torch eager, torch.compile and
cuBLAS (torch.matmul) on reductions over every axis, softmax/layernorm over transposed and
strided inputs, elementwise work with a transposed operand, broadcast outer products,
batched, tall-skinny and odd-shaped GEMMs (float32 with TF32 off, float16, bfloat16).

    python benchmarks/layouts.py --device cuda [--quick] [--only gemm,rows] [--json FILE]

Times are GPU times (benchmarks/gpu.py's method: CUDA events, calls enqueued behind a
sleeping kernel, contenders interleaved in rounds, medians). ratio = best peer / torsh-jit
(above 1: torsh-jit is faster). Every torsh-jit result is checked against torch first; a
row whose kernel fails or differs is printed as such and counts as ratio 0.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as Fn  # noqa: E402

import gpu as G  # noqa: E402  (benchmarks/gpu.py: timing, checks)
import torsh_jit as tj  # noqa: E402


# a 16-bit GEMM's result in its inputs' dtype, as cuBLAS gives it (numpy's bf16 @ bf16 is f32)
NARROW = {torch.bfloat16: ml_dtypes.bfloat16, torch.float16: np.float16}


# -- the functions, once with torsh-jit's ops and once with torch's --------------------------
def tj_softmax(x):
    e = tj.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def tj_layernorm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / tj.sqrt(var + 1e-5) * w + b


def t_layernorm(x, w, b):
    return Fn.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


def tj_gelu(v):
    return 0.5 * v * (1 + tj.tanh(0.7978845608 * (v + 0.044715 * v * v * v)))


def t_gelu(v):
    return Fn.gelu(v, approximate="tanh")


def reduce_row(op, axis):
    """(torsh-jit fn, torch fn) of one reduction over `axis`."""
    def f(x):
        return getattr(x, op)(axis=axis)

    def t(x):
        if op == "max":
            return torch.amax(x, dim=axis)
        return getattr(torch, op)(x, dim=axis)
    return f, t


def randn(dev, *shape, dtype=torch.float32):
    return torch.randn(*shape, device=dev, dtype=dtype)


def rows(dev):
    """(section, name, tj fn, torch fn, args maker, tolerance, bytes moved or 0, flops or 0)."""
    out = []
    f4 = 4
    # reductions over each axis
    for shape, axis in (((8192, 8192), -1), ((8192, 8192), 0), ((1 << 20, 32), 0),
                        ((1 << 20, 32), 1), ((4096, 1000), 0), ((1000, 4096), 0),
                        ((256, 512, 256), 1), ((512, 256, 256), 0), ((256, 256, 512), (0, 2)),
                        ((64, 1 << 20), None)):
        op = "sum"
        f, t = reduce_row(op, axis)
        n = math.prod(shape)
        out.append(("reduce", f"sum axis={axis} {'x'.join(map(str, shape))}", f, t,
                    lambda s=shape: (randn(dev, *s),), 1e-5, n * f4, 0))
    f, t = reduce_row("max", 0)
    out.append(("reduce", "max axis=0 4096x4096", f, t, lambda: (randn(dev, 4096, 4096),), 0,
                4096 * 4096 * f4, 0))
    f, t = reduce_row("mean", 0)
    out.append(("reduce", "mean axis=0 3000x777", f, t, lambda: (randn(dev, 3000, 777),), 1e-5,
                3000 * 777 * f4, 0))
    # softmax / layernorm over layouts
    sm_t = lambda x: torch.softmax(x, -1)                       # noqa: E731
    for name, make in (("contiguous 4096x4096", lambda: (randn(dev, 4096, 4096),)),
                       ("transposed 4096x4096", lambda: (randn(dev, 4096, 4096).t(),)),
                       ("strided x[:, ::2] 4096x4096", lambda: (randn(dev, 4096, 8192)[:, ::2],)),
                       ("8192x1000", lambda: (randn(dev, 8192, 1000),)),
                       ("transposed 1000x8192", lambda: (randn(dev, 8192, 1000).t(),)),
                       ("3-D 64x512x768", lambda: (randn(dev, 64, 512, 768),))):
        out.append(("softmax", name, tj_softmax, sm_t, make, 1e-5, 0, 0))
    for name, make in (("contiguous 4096x4096", lambda: (randn(dev, 4096, 4096),)),
                       ("transposed 4096x4096", lambda: (randn(dev, 4096, 4096).t(),)),
                       ("3-D 64x512x768", lambda: (randn(dev, 64, 512, 768),))):
        def mk(make=make):
            x, = make()
            return x, randn(dev, x.shape[-1]), randn(dev, x.shape[-1])
        out.append(("layernorm", name, tj_layernorm, t_layernorm, mk, 1e-5, 0, 0))
    out.append(("softmax", "over axis 0, 4096x4096",
                lambda x: tj.exp(x - x.max(axis=0, keepdims=True)) /
                tj.exp(x - x.max(axis=0, keepdims=True)).sum(axis=0, keepdims=True),
                lambda x: torch.softmax(x, 0), lambda: (randn(dev, 4096, 4096),), 1e-5, 0, 0))
    # elementwise over layouts
    out.append(("elementwise", "x + y.T 4096x4096", lambda x, y: x + y, lambda x, y: x + y,
                lambda: (randn(dev, 4096, 4096), randn(dev, 4096, 4096).t()), 0, 0, 0))
    out.append(("elementwise", "exp(x.T) * 2 + 1, 8192x4096", lambda x: tj.exp(x) * 2 + 1,
                lambda x: torch.exp(x) * 2 + 1, lambda: (randn(dev, 4096, 8192).t(),), 1e-6, 0, 0))
    out.append(("elementwise", "Fortran-order a*b+c 4096x4096", lambda a, b, c: a * b + c,
                lambda a, b, c: a * b + c,
                lambda: tuple(randn(dev, 4096, 4096).t() for _ in range(3)), 1e-6, 0, 0))
    out.append(("elementwise", "outer exp(-(x[:,None]-y[None,:])^2) 8192^2",
                lambda x, y: tj.exp(-((x[:, None] - y[None, :]) ** 2)),
                lambda x, y: torch.exp(-((x[:, None] - y[None, :]) ** 2)),
                lambda: (randn(dev, 8192), randn(dev, 8192)), 1e-6, 0, 0))
    out.append(("elementwise", "bias 3-D x[64,512,768] + b[768]", lambda x, b: tj.maximum(x + b, 0),
                lambda x, b: torch.relu(x + b), lambda: (randn(dev, 64, 512, 768), randn(dev, 768)),
                0, 0, 0))
    # GEMMs
    mm = lambda a, b: a @ b                                      # noqa: E731

    def gemm(section, name, dt, M, N, K, batch=(), bT=False, epi=None, tol=None):
        def make():
            a = randn(dev, *batch, M, K, dtype=dt)
            b = randn(dev, *batch, N, K, dtype=dt).transpose(-1, -2) if bT else \
                randn(dev, *batch, K, N, dtype=dt)
            if epi is None:
                return a, b
            return a, b, randn(dev, N, dtype=dt)
        flops = 2 * math.prod(batch) * M * N * K
        if epi is None:
            f = (lambda a, b: (a @ b).astype(NARROW[dt])) if dt != torch.float32 else mm
            t = mm
        else:
            cast = NARROW.get(dt)
            f = (lambda a, b, c: tj_gelu(a @ b + c).astype(cast)) if cast else \
                (lambda a, b, c: tj_gelu(a @ b + c))
            t = lambda a, b, c: t_gelu(a @ b + c)                # noqa: E731
        tol = tol or (1e-5 if dt == torch.float32 else 1e-2)
        out.append((section, name, f, t, make, tol, 0, flops))

    gemm("gemm f32", "2048^3 (TF32 off)", torch.float32, 2048, 2048, 2048)
    gemm("gemm f32", "4096^3 (TF32 off)", torch.float32, 4096, 4096, 4096)
    gemm("gemm f32", "gelu(x@w+b) 3000x2900x1500", torch.float32, 3000, 2900, 1500, epi=True)
    gemm("gemm f32", "x @ w.T 4096x1000x3000", torch.float32, 4096, 1000, 3000, bT=True)
    gemm("gemm f32", "tall-skinny 65536x64x64", torch.float32, 65536, 64, 64)
    gemm("gemm f32", "skinny-tall 64x64x65536", torch.float32, 64, 64, 65536)
    gemm("gemm f32", "batched 2048 x (32x32x32)", torch.float32, 32, 32, 32, batch=(2048,))
    for dt, dn in ((torch.bfloat16, "bf16"), (torch.float16, "f16")):
        gemm(f"gemm {dn}", "gelu(x@w+b) 3000x5000x1000", dt, 3000, 5000, 1000, epi=True)
        gemm(f"gemm {dn}", "gelu(x@w+b) 1000x3000x1500, K*2B not 16B-aligned",
             dt, 1000, 3000, 1500, epi=True)
        gemm(f"gemm {dn}", "x @ w.T 4096x4096x4096", dt, 4096, 4096, 4096, bT=True)
    gemm("gemm bf16", "batched 4096 x (64x64x64)", torch.bfloat16, 64, 64, 64, batch=(4096,))
    gemm("gemm bf16", "batched 64 x (512x512x512)", torch.bfloat16, 512, 512, 512, batch=(64,))
    gemm("gemm bf16", "batched 8x16 x (1024x128x64) (attention-like)", torch.bfloat16,
         1024, 1024, 64, batch=(8, 16))
    gemm("gemm bf16", "tall-skinny 131072x128x128", torch.bfloat16, 131072, 128, 128)
    gemm("gemm bf16", "skinny-tall 128x128x131072", torch.bfloat16, 128, 128, 131072)
    return out


def to_torch_result(got, want):
    got = got if isinstance(got, torch.Tensor) else torch.as_tensor(got, device=want.device)
    return got.reshape(want.shape)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no torch.compile")
    ap.add_argument("--only", default="", help="comma-separated section prefixes (reduce, "
                    "softmax, layernorm, elementwise, gemm)")
    ap.add_argument("--json", default="")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)   # (layouts.py's)
    ns = ap.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False        # f32 GEMMs in f32 (the rows)
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    torch.manual_seed(0)
    R = 8 if ns.quick else ns.repeat
    only = [s for s in ns.only.split(",") if s]
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  "
          f"target {tj.parse_target('cuda').name}", flush=True)
    table = []
    for section, name, f, t, make, tol, bytes_, flops in rows(dev):
        if only and not any(section.startswith(o) for o in only):
            continue
        args = make()
        want = t(*[a.double() if a.dtype == torch.float32 else a.float() for a in args])
        fns = {}
        err = None
        try:
            k = tj.kernel(f).to("cuda")
            got = to_torch_result(k(*args), want)
            e = G.rel_err(got, want)
            if not e <= max(tol, 1e-6):
                err = f"differs from torch: relative error {e:.1e}"
            else:
                fns["torsh-jit"] = lambda k=k, a=args: k(*a)
        except Exception as ex:  # noqa: BLE001 (the table goes on; the row says why)
            err = f"{type(ex).__name__}: {str(ex).splitlines()[0][:120]}"
        fns["torch eager"] = lambda a=args: t(*a)
        if not ns.quick:
            try:
                torch._dynamo.reset()      # each row its own compile (no recompile limit)
                tc = torch.compile(t)
                tc(*args)
                fns["torch.compile"] = lambda tc=tc, a=args: tc(*a)
            except Exception as ex:  # noqa: BLE001
                print(f"  ({section} {name}: torch.compile failed: {type(ex).__name__})")
        res = G.compare(fns, R, rounds=3)
        peers = {kk: v for kk, v in res.items() if kk != "torsh-jit"}
        best = min(peers, key=peers.get)
        ratio = peers[best] / res["torsh-jit"] if "torsh-jit" in res else 0.0
        rate = (f"{flops / res['torsh-jit'] / 1e9:7.1f} TFLOP/s" if flops and "torsh-jit" in res
                else "")
        line = (f"  {section:<12} {name:<52} torsh-jit {res.get('torsh-jit', float('nan')):8.4f} ms"
                f"  {best} {peers[best]:8.4f} ms  ratio {ratio:5.2f}  {rate}"
                + (f"  [{err}]" if err else ""))
        print(line, flush=True)
        table.append({"section": section, "name": name, "ms": res, "best_peer": best,
                      "ratio": ratio, "error": err})
        del args, want, fns
        torch.cuda.empty_cache()
    ok = [r["ratio"] for r in table if r["ratio"] > 0]
    gm = math.exp(sum(math.log(r) for r in ok) / len(ok)) if ok else 0.0
    low = [r for r in table if r["ratio"] < 0.8]
    print(f"rows {len(table)}, geometric mean {gm:.2f}, below 0.8x: {len(low)}", flush=True)
    for r in low:
        print(f"  below 0.8x: {r['section']} {r['name']} {r['ratio']:.2f}")
    if ns.json:
        Path(ns.json).write_text(json.dumps({"device": torch.cuda.get_device_name(),
                                             "rows": table, "geomean": gm}, indent=1))


if __name__ == "__main__":
    main()
