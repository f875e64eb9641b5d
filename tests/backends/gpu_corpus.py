"""What the CUDA backend adds to the shared op corpus (tests/targets/op_corpus.py): float16 and
bfloat16, and the shapes that pick each kernel layout (a warp, a block or several blocks per
row, rows kept in registers or re-read, tensor-core and SIMT matmul, edges of every tile).

16-bit results are compared by ‖got − ref‖ / ‖ref‖ against float64 arithmetic on the same
(16-bit) inputs, rounded to the output dtype; float32 results like op_corpus's checks.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))
from op_corpus import CASES, NP, Case, Tol, check, reference, values  # noqa: E402

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:       # pragma: no cover - ml_dtypes is a test dependency
    BF16 = None


@dataclass(frozen=True)
class NormCase:
    """A case checked by relative norm against float64 arithmetic."""
    name: str
    fn: object
    make: object
    rel: float                 # ‖got - ref‖ / ‖ref‖ bound per output
    labels: tuple = ()


def _softmax(F, x):
    e = F.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layernorm(F, x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / F.sqrt(var + 1e-5) * w + b


def _rmsnorm(F, x, w):
    return x / F.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-6) * w


def _log_softmax(F, x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - F.log(F.exp(x - m).sum(axis=-1, keepdims=True))


def _rows(shape, name):
    """float32 softmax, log_softmax, layernorm, rmsnorm and sums over rows of one shape."""
    def fn(F):
        def f(x, w, b):
            return (_softmax(F, x), _log_softmax(F, x), _layernorm(F, x, w, b), _rmsnorm(F, x, w),
                    x.sum(axis=-1), F.argmax(x, axis=-1), x.max(axis=-1))
        return f

    def make(rng):
        n = shape[-1]
        x = values(rng, "float32", int(np.prod(shape)), scale=2.0, special=False).reshape(shape)
        return x, values(rng, "float32", n, special=False), values(rng, "float32", n, special=False)
    tols = (Tol(16, 4), Tol(16, 64), Tol(64, 64), Tol(16, 16), Tol(16, 4096), None, None)
    return Case(f"rows-{name}", fn, make, tols,
                ("softmax", "log_softmax", "layernorm", "rmsnorm", "sum", "argmax", "max"))


def _long_sum():
    def fn(F):
        def f(x, y):
            return F.sum(x), F.max(x), x.sum(axis=0), F.argmin(y)
        return f

    def make(rng):
        x = values(rng, "float32", 1 << 20, special=False)
        return x, values(rng, "float32", 300001, special=False)
    return Case("long-sum", fn, make, (Tol(8, 1 << 14), None, Tol(8, 1 << 14), None),
                ("sum", "max", "sum axis 0", "argmin"))


def _column_sums():
    def fn(F):
        def f(x, m):
            return x.sum(axis=0), x.max(axis=0), F.argmax(x, axis=0), m.sum(axis=1), \
                F.any(m > 3, axis=0)
        return f

    def make(rng):
        return (values(rng, "float32", 123 * 517, special=False).reshape(123, 517),
                values(rng, "int32", 64 * 33).reshape(64, 33))
    # numpy sums axis 0 row after row in float32 (not pairwise): its own error is the bound
    return Case("columns", fn, make, (Tol(64, 2048),), ("sum 0", "max 0", "argmax 0", "int sum", "any"))


def _half_elementwise(dt):
    def fn(F):
        def f(x, y):
            return (x * y + F.exp(x) - F.tanh(y), F.relu(x - 1), F.where(x > y, x, y),
                    (x / (F.abs(y) + 1)).astype(np.float32), F.maximum(x, y) * 2, F.sqrt(F.abs(x)),
                    F.sigmoid(y))
        return f

    def make(rng):
        x = (rng.standard_normal(1031) * 2).astype(dt)
        y = (rng.standard_normal(1031) * 2).astype(dt)
        return x, y
    name = "float16" if dt == np.float16 else "bfloat16"
    return NormCase(f"half-elementwise-{name}", fn, make, 8e-3 if name == "bfloat16" else 1e-3,
                    ("x*y+exp-tanh", "relu", "where", "to float32", "maximum", "sqrt", "sigmoid"))


def _half_rows(dt):
    def fn(F):
        def f(x, w, b):
            return _softmax(F, x), _layernorm(F, x, w, b), x.sum(axis=-1), x.max(axis=-1)
        return f

    def make(rng):
        x = (rng.standard_normal((37, 1000))).astype(dt)
        w = (rng.standard_normal(1000)).astype(dt)
        b = (rng.standard_normal(1000)).astype(dt)
        return x, w, b
    name = "float16" if dt == np.float16 else "bfloat16"
    return NormCase(f"half-rows-{name}", fn, make, 2e-2, ("softmax", "layernorm", "sum", "max"))


def _half_matmul(dt):
    def fn(F):
        def f(a, b, bias, bt, c, d, e):
            return (F.relu(a @ b + bias),     # tensor cores, B along N, fused epilogue
                    a @ bt,                   # B along K (a transposed view)
                    c @ d,                    # batched, edges of the 64x64 tiles, K not a multiple of 32
                    e[:, 1:] @ b[1:, :])      # misaligned operands: the CUDA-core path
        return f

    def make(rng):
        a = rng.uniform(-1, 1, (256, 136)).astype(dt)
        b = rng.uniform(-1, 1, (136, 192)).astype(dt)
        bias = rng.uniform(-1, 1, 192).astype(dt)
        bt = rng.uniform(-1, 1, (200, 136)).astype(dt).T
        c = rng.uniform(-1, 1, (2, 3, 70, 40)).astype(dt)
        d = rng.uniform(-1, 1, (40, 48)).astype(dt)
        e = rng.uniform(-1, 1, (33, 136)).astype(dt)
        return a, b, bias, bt, c, d, e
    name = "float16" if dt == np.float16 else "bfloat16"
    return NormCase(f"half-matmul-{name}", fn, make, 1e-2 if name == "bfloat16" else 2e-3,
                    ("relu(a@b+bias)", "a @ b.T", "batched", "misaligned"))


def _big_matmul(dt):
    def fn(F):
        def f(a, b, bias, c, d, e):
            return (F.relu(a @ b + bias),     # the warpgroup (wgmma) path on Hopper, epilogue fused
                    c @ d,                    # batched with broadcasting, M and N past the tiles
                    c @ e.T)                  # batched, B along K
        return f

    def make(rng):
        u = lambda *shape: rng.uniform(-1, 1, shape).astype(dt)    # noqa: E731
        return (u(2048, 512), u(512, 2048), u(2048), u(2, 3, 300, 136), u(3, 136, 264), u(200, 136))
    name = "float16" if dt == np.float16 else "bfloat16"
    return NormCase(f"big-matmul-{name}", fn, make, 1e-2 if name == "bfloat16" else 2e-3,
                    ("relu(a@b+bias)", "batched", "batched, B along K"))


FLOAT_CASES = [_rows((64, 4096), "block"), _rows((300, 1024), "warp"), _rows((9, 40000), "split"),
               _rows((64, 32768), "block-1024"), _long_sum(), _column_sums()]
HALF_CASES = [f(dt) for dt in (np.float16, BF16) if dt is not None
              for f in (_half_elementwise, _half_rows, _half_matmul, _big_matmul)]
ALL_CASES = list(CASES) + FLOAT_CASES + HALF_CASES


def _as64(x):
    x = np.asarray(x)
    return x.astype(np.float64) if x.dtype.kind == "f" or x.dtype == BF16 else x


def norm_reference(case: NormCase, args):
    """float64 arithmetic on the inputs, each output rounded to the dtype numpy's promotion
    gives (computed from the numpy spelling on the 16-bit inputs, for the dtype alone)."""
    with np.errstate(all="ignore"):
        ref = case.fn(NP)(*[_as64(a) for a in args])
        typed = case.fn(NP)(*[np.asarray(a)[(slice(0, 2),) * np.ndim(a)] for a in args])
    ref = ref if isinstance(ref, tuple) else (ref,)
    typed = typed if isinstance(typed, tuple) else (typed,)
    return tuple((r, np.asarray(t).dtype) for r, t in zip(ref, typed))


def norm_check(case: NormCase, got, want) -> None:
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for i, (g, (w, dt)) in enumerate(zip(got, want)):
        label = case.labels[i] if i < len(case.labels) else f"output {i}"
        g = np.asarray(g)
        assert g.dtype == dt, f"{case.name}: {label}: dtype {g.dtype}, numpy gives {dt}"
        assert g.shape == w.shape, f"{case.name}: {label}: shape {g.shape}, want {w.shape}"
        g64 = g.astype(np.float64)
        assert np.isfinite(g64).all(), f"{case.name}: {label}: non-finite values"
        err = np.linalg.norm(g64 - w) / max(np.linalg.norm(w), 1e-30)
        assert err <= case.rel, f"{case.name}: {label}: relative error {err:.2e} > {case.rel:.0e}"


def run_check(case, got, args) -> None:
    if isinstance(case, NormCase):
        norm_check(case, got, norm_reference(case, args))
    else:
        check(case, got, reference(case.fn, args))
