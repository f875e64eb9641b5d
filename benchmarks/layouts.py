"""torsh-jit on every layout and shape (issue 18): a matrix of layouts x shapes per kernel kind.

    python benchmarks/layouts.py                 # CPU: torsh-jit against numpy and numba
    python benchmarks/layouts.py --quick         # a smoke run (small sizes, few repeats)
    python benchmarks/layouts.py --json out.json
    python benchmarks/layouts.py --device cuda   # the GPU matrix (benchmarks/layouts_gpu.py)

Rows: reductions over each axis (set) of 2-D and 3-D inputs, softmax/layernorm on contiguous,
transposed and strided inputs, elementwise with transposed, Fortran-order, strided and
broadcast operands, batched matmuls over several batch/size mixes, tall-skinny and
skinny-tall GEMMs, odd-shaped GEMM + epilogue in float32 and float64.

Peers on the CPU: numpy, and numba with parallel=True, fastmath=True (compiled once per
input layout before timing). Every peer runs with all the threads this process may use;
times are medians of --repeat runs, each peer timed right after torsh-jit on the same
inputs (interleaved, so a noisy neighbour hits all of them alike). ratio = best peer time /
torsh-jit time: above 1, torsh-jit is faster. Results are checked against numpy first.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

try:
    import numba
    from numba import njit, prange
except ImportError:   # the table says n/a
    numba = None


def median_time(f, repeat: int) -> float:
    """benchmarks/cpu.py's median, with the calls per sample chosen so a sample takes >= ~2 ms."""
    f()
    t0 = time.perf_counter()
    f()
    once = time.perf_counter() - t0
    return cpu_median_time(f, repeat, max(1, int(2e-3 / max(once, 1e-7))), settle=0.2)


# -- the workloads, as plain numpy (also what torsh-jit traces) --------------------------------
from cpu import layernorm, softmax  # noqa: E402  (benchmarks/cpu.py's)
from cpu import median_time as cpu_median_time  # noqa: E402


def reducer(op, axis):
    if op == "sum":
        return lambda x: x.sum(axis=axis)
    if op == "max":
        return lambda x: x.max(axis=axis)
    if op == "mean_sq":        # a fused prologue
        return lambda x: (x * x).mean(axis=axis)
    raise ValueError(op)


def add_t(a, b):
    return a + b


def scale_shift(a):
    return a * 2.0 + 1.0


def exp_mul(a, b):
    return np.exp(a) * b


def outer(u, v):
    return u[:, None] * v[None, :]


def outer_exp(u, v):
    return np.exp(u[:, None] - v[None, :])


def matmul(a, b):
    return a @ b


def gemm_bias_relu(a, b, c):
    return np.maximum(a @ b + c, 0)


def gemm_gelu(a, b, c):
    y = a @ b + c
    return 0.5 * y * (1 + np.tanh(0.7978845608 * (y + 0.044715 * y * y * y)))


# -- numba versions (parallel=True, fastmath=True) -----------------------------------------------
NB = {}
if numba is not None:
    _opt = dict(parallel=True, fastmath=True, cache=False)

    @njit(**_opt)
    def _nb_softmax(x):
        out = np.empty(x.shape, x.dtype)
        n = x.shape[1]
        for r in prange(x.shape[0]):
            m = x[r, 0]
            for j in range(n):
                m = max(m, x[r, j])
            s = 0.0
            for j in range(n):
                e = np.exp(x[r, j] - m)
                out[r, j] = e
                s += e
            inv = 1.0 / s
            for j in range(n):
                out[r, j] *= inv
        return out

    @njit(**_opt)
    def _nb_layernorm(x, w, b):
        out = np.empty(x.shape, x.dtype)
        n = x.shape[1]
        for r in prange(x.shape[0]):
            mu = 0.0
            for j in range(n):
                mu += x[r, j]
            mu /= n
            var = 0.0
            for j in range(n):
                d = x[r, j] - mu
                var += d * d
            var /= n
            inv = 1.0 / np.sqrt(var + 1e-5)
            for j in range(n):
                out[r, j] = (x[r, j] - mu) * inv * w[j] + b[j]
        return out

    @njit(**_opt)
    def _nb_sum_last(x):            # 2-D, reduce the last axis
        out = np.empty(x.shape[0], x.dtype)
        for r in prange(x.shape[0]):
            s = 0.0
            for j in range(x.shape[1]):
                s += x[r, j]
            out[r] = s
        return out

    @njit(**_opt)
    def _nb_sum_first(x):           # 2-D, reduce the first axis: threads split the columns
        n, m = x.shape
        out = np.zeros(m, x.dtype)
        nb = (m + 255) // 256
        for blk in prange(nb):
            lo = blk * 256
            hi = min(m, lo + 256)
            for i in range(n):
                for j in range(lo, hi):
                    out[j] += x[i, j]
        return out

    @njit(**_opt)
    def _nb_max_first(x):
        n, m = x.shape
        out = x[0].copy()
        nb = (m + 255) // 256
        for blk in prange(nb):
            lo = blk * 256
            hi = min(m, lo + 256)
            for i in range(1, n):
                for j in range(lo, hi):
                    out[j] = max(out[j], x[i, j])
        return out

    @njit(**_opt)
    def _nb_sum3(x, axis):          # 3-D, reduce one axis
        a, b, c = x.shape
        if axis == 0:
            out = np.zeros((b, c), x.dtype)
            for j in prange(b):
                for i in range(a):
                    for k in range(c):
                        out[j, k] += x[i, j, k]
            return out
        if axis == 1:
            out = np.zeros((a, c), x.dtype)
            for i in prange(a):
                for j in range(b):
                    for k in range(c):
                        out[i, k] += x[i, j, k]
            return out
        out = np.zeros((a, b), x.dtype)
        for i in prange(a):
            for j in range(b):
                s = 0.0
                for k in range(c):
                    s += x[i, j, k]
                out[i, j] = s
        return out

    @njit(**_opt)
    def _nb_sum02(x):               # 3-D, reduce axes 0 and 2
        a, b, c = x.shape
        out = np.zeros(b, x.dtype)
        for j in prange(b):
            s = 0.0
            for i in range(a):
                for k in range(c):
                    s += x[i, j, k]
            out[j] = s
        return out

    @njit(**_opt)
    def _nb_sum_all(x):
        f = x.ravel()
        s = 0.0
        for i in prange(f.size):
            s += f[i]
        return s

    @njit(**_opt)
    def _nb_ew2(a, b):              # 2-D a + b, any layouts
        out = np.empty(a.shape, a.dtype)
        for i in prange(a.shape[0]):
            for j in range(a.shape[1]):
                out[i, j] = a[i, j] + b[i, j]
        return out

    @njit(**_opt)
    def _nb_scale_shift(a):
        out = np.empty(a.shape, a.dtype)
        for i in prange(a.shape[0]):
            for j in range(a.shape[1]):
                out[i, j] = a[i, j] * 2.0 + 1.0
        return out

    @njit(**_opt)
    def _nb_exp_mul(a, b):
        out = np.empty(a.shape, a.dtype)
        for i in prange(a.shape[0]):
            for j in range(a.shape[1]):
                out[i, j] = np.exp(a[i, j]) * b[i, j]
        return out

    @njit(**_opt)
    def _nb_outer(u, v):
        out = np.empty((u.size, v.size), u.dtype)
        for i in prange(u.size):
            for j in range(v.size):
                out[i, j] = u[i] * v[j]
        return out

    @njit(**_opt)
    def _nb_outer_exp(u, v):
        out = np.empty((u.size, v.size), u.dtype)
        for i in prange(u.size):
            for j in range(v.size):
                out[i, j] = np.exp(u[i] - v[j])
        return out

    @njit(**_opt)
    def _nb_bmm(a, b):
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), a.dtype)
        for i in prange(a.shape[0]):
            out[i] = a[i] @ b[i]
        return out

    @njit(**_opt)
    def _nb_matmul(a, b):
        return a @ b

    @njit(**_opt)
    def _nb_gemm_bias_relu(a, b, c):
        y = a @ b
        for i in prange(y.shape[0]):
            for j in range(y.shape[1]):
                y[i, j] = max(y[i, j] + c[j], 0.0)
        return y

    @njit(**_opt)
    def _nb_gemm_gelu(a, b, c):
        y = a @ b
        for i in prange(y.shape[0]):
            for j in range(y.shape[1]):
                t = y[i, j] + c[j]
                y[i, j] = 0.5 * t * (1 + np.tanh(0.7978845608 * (t + 0.044715 * t * t * t)))
        return y

    NB = dict(softmax=_nb_softmax, layernorm=_nb_layernorm, sum_last=_nb_sum_last,
              sum_first=_nb_sum_first, max_first=_nb_max_first, sum3=_nb_sum3, sum02=_nb_sum02,
              sum_all=_nb_sum_all, add_t=_nb_ew2, scale_shift=_nb_scale_shift, exp_mul=_nb_exp_mul,
              outer=_nb_outer, outer_exp=_nb_outer_exp, bmm=_nb_bmm, matmul=_nb_matmul,
              gemm_bias_relu=_nb_gemm_bias_relu, gemm_gelu=_nb_gemm_gelu)


def _nb(name, *bound):
    f = NB.get(name)
    return None if f is None else (lambda: f(*bound))


# -- the matrix ----------------------------------------------------------------------------------
def cases(rng, quick: bool):
    """(name, numpy fn, args, numba thunk or None). Sizes are the issue's: realistic, not only
    powers of two; --quick divides the big ones so the whole matrix runs in seconds."""
    s = 4 if quick else 1

    def r(*shape, dt=np.float32):
        return rng.standard_normal(shape).astype(dt)

    out = []
    # reductions over each axis of 2-D and 3-D inputs
    for (n, m) in [(4096 // s, 1024), (1024 // s, 4096), (1000, 37)]:
        x = r(n, m)
        out.append((f"sum axis=-1 {n}x{m}", reducer("sum", -1), (x,), _nb("sum_last", x)))
        out.append((f"sum axis=0 {n}x{m}", reducer("sum", 0), (x,), _nb("sum_first", x)))
    x = r(4096 // s, 1024)
    out.append((f"max axis=0 {x.shape[0]}x1024", reducer("max", 0), (x,), _nb("max_first", x)))
    out.append((f"mean(x*x) axis=0 {x.shape[0]}x1024", reducer("mean_sq", 0), (x,), None))
    xt = r(1024, 4096 // s).T
    out.append((f"sum axis=-1 {xt.shape[0]}x{xt.shape[1]} (x.T)", reducer("sum", -1), (xt,),
                _nb("sum_last", xt)))
    x3 = r(512 // s, 512, 64)
    d = "x".join(map(str, x3.shape))
    for ax in (0, 1, 2):
        out.append((f"sum axis={ax} {d}", reducer("sum", ax), (x3,),
                    (lambda ax=ax: NB["sum3"](x3, ax)) if NB else None))
    out.append((f"sum axis=(0,2) {d}", reducer("sum", (0, 2)), (x3,), _nb("sum02", x3)))
    out.append((f"sum all {d}", reducer("sum", None), (x3,), _nb("sum_all", x3)))

    # softmax / layernorm on contiguous, transposed and strided inputs
    for dt, tag in ((np.float32, ""), (np.float64, " f64")):
        big = 4096 // s if dt == np.float32 else 2048 // s
        xc = r(big, 1024, dt=dt)
        xT = r(1024, big, dt=dt).T
        xs = r(big, 2048, dt=dt)[:, ::2]
        for lay, v in (("", xc), (" (x.T)", xT), (" (x[:, ::2])", xs)):
            out.append((f"softmax {big}x1024{lay}{tag}", softmax, (v,), _nb("softmax", v)))
        w, b = r(1024, dt=dt), r(1024, dt=dt)
        if dt == np.float32:
            for lay, v in (("", xc), (" (x.T)", xT), (" (x[:, ::2])", xs)):
                out.append((f"layernorm {big}x1024{lay}", layernorm, (v, w, b), _nb("layernorm", v, w, b)))
    xo = r(1000, 37)
    out.append(("softmax 1000x37", softmax, (xo,), _nb("softmax", xo)))
    xoT = r(37, 1000).T
    out.append(("softmax 1000x37 (x.T)", softmax, (xoT,), _nb("softmax", xoT)))

    # elementwise over transposed, Fortran-order, strided and broadcast operands
    a = r(4096 // s, 1024)
    bT = r(1024, 4096 // s).T
    out.append((f"a + b.T {a.shape[0]}x1024", add_t, (a, bT), _nb("add_t", a, bT)))
    out.append((f"x.T*2+1 {a.shape[0]}x1024", scale_shift, (bT,), _nb("scale_shift", bT)))
    aF = np.asfortranarray(r(4096 // s, 1024))
    out.append((f"exp(F-order)*C {a.shape[0]}x1024", exp_mul, (aF, a), _nb("exp_mul", aF, a)))
    ast = r(4096 // s, 3072)[:, ::3]
    out.append((f"a[:, ::3] + b {a.shape[0]}x1024", add_t, (ast, a), _nb("add_t", ast, a)))
    u, v = r(4096 // s), r(1024)
    out.append((f"outer u*v {u.size}x1024", outer, (u, v), _nb("outer", u, v)))
    out.append((f"outer exp(u-v) {u.size}x1024", outer_exp, (u, v), _nb("outer_exp", u, v)))
    u2, v2 = r(1000), r(37)
    out.append(("outer u*v 1000x37", outer, (u2, v2), _nb("outer", u2, v2)))

    # batched and many-small matmuls
    for (bt, m, k, n) in [(64, 32, 32, 32), (256 // s, 16, 16, 16), (8, 256, 256, 256),
                          (32, 64, 128, 64), (1000 // s, 8, 8, 8), (12, 197, 64, 197)]:
        A, B = r(bt, m, k), r(bt, k, n)
        out.append((f"bmm {bt}x({m}x{k}@{k}x{n})", matmul, (A, B), _nb("bmm", A, B)))
    # tall-skinny and skinny-tall GEMMs
    for (m, k, n) in [(65536 // s, 64, 16), (4096 // s, 1024, 16), (16, 1024, 4096 // s),
                      (64, 16384 // s, 64)]:
        A, B = r(m, k), r(k, n)
        out.append((f"gemm {m}x{k}@{k}x{n}", matmul, (A, B), _nb("matmul", A, B)))
    # odd-shaped GEMM + epilogue, f32 and f64
    for (m, k, n), dt in [((1000, 37, 500), np.float32), ((777, 555, 333), np.float32),
                          ((777, 555, 333), np.float64), ((1023, 1025, 257), np.float32)]:
        A, B, c = r(m, k, dt=dt), r(k, n, dt=dt), r(n, dt=dt)
        tag = " f64" if dt == np.float64 else ""
        out.append((f"relu(a@b+c) {m}x{k}x{n}{tag}", gemm_bias_relu, (A, B, c),
                    _nb("gemm_bias_relu", A, B, c)))
    A, B, c = r(777, 555), r(555, 333), r(333)
    out.append(("gelu(a@b+c) 777x555x333", gemm_gelu, (A, B, c), _nb("gemm_gelu", A, B, c)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, 3 repeats (a smoke test)")
    ap.add_argument("--only", default=None, help="rows whose name contains this text")
    ns, rest = ap.parse_known_args(argv)
    if ns.device == "cuda":
        import layouts_gpu
        return layouts_gpu.main(argv)
    if rest:
        ap.error(f"unrecognised arguments: {' '.join(rest)}")
    import torsh_jit as tj
    from torsh_jit.schedule.threads import num_threads
    R = 3 if ns.quick else ns.repeat
    rng = np.random.default_rng(0)
    print(f"torsh-jit {tj.__version__} on {tj.available_targets()[0]}, {num_threads()} threads; "
          f"numpy {np.__version__}" + (f", numba {numba.__version__} (parallel, fastmath)" if numba else ", numba n/a"))
    print(f"medians of {R} runs, each peer right after torsh-jit; ratio = best peer time / torsh-jit time\n")
    print(f"{'workload':<38} {'torsh-jit':>9} {'numpy':>9} {'numba':>9} {'ratio':>7}")
    rows = {}
    for name, fn, args, nb in cases(rng, ns.quick):
        if ns.only and ns.only not in name:
            continue
        k = tj.kernel(fn)
        want = fn(*args)
        got = k(*args)
        tol = 1e-3 if want.dtype == np.float32 else 1e-9
        if not np.allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max())) * 4):
            raise SystemExit(f"{name}: torsh-jit disagrees with numpy")
        if nb is not None:
            nb()     # compile for this layout before timing
        t = median_time(lambda: k(*args), R)
        t_np = median_time(lambda: fn(*args), R)
        t_nb = median_time(nb, R) if nb is not None else math.inf
        best = min(t_np, t_nb)
        ratio = best / t
        rows[name] = {"torsh_jit_ms": t * 1e3, "numpy_ms": t_np * 1e3,
                      "numba_ms": None if nb is None else t_nb * 1e3, "ratio": ratio}
        nbs = f"{t_nb * 1e3:>9.3f}" if nb is not None else f"{'n/a':>9}"
        flag = "  <0.8" if ratio < 0.8 else ""
        print(f"{name:<38} {t * 1e3:>9.3f} {t_np * 1e3:>9.3f} {nbs} {ratio:>6.2f}x{flag}", flush=True)
    ratios = [r["ratio"] for r in rows.values()]
    geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if ratios else float("nan")
    below = [n for n, r in rows.items() if r["ratio"] < 0.8]
    print(f"\n{len(rows)} rows; geometric mean ratio {geo:.2f}x; min {min(ratios):.2f}x; "
          f"{len(below)} below 0.8x")
    if ns.json:
        Path(ns.json).write_text(json.dumps({"rows": rows, "geomean": geo, "below_0.8": below,
                                             "threads": num_threads(), "repeat": R}, indent=2))
    return rows


if __name__ == "__main__":
    main()
