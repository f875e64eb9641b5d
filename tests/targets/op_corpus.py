"""One op corpus, run on every CPU target (tests/targets/test_corpus.py).

Every op kind, broadcasting, views, reductions, softmax, layernorm, matmul, int and float
dtypes and special values, grouped into a few functions with many outputs each: one
function is one compiled module and, on an emulated target, one emulator run.

A case is written once against a namespace `F` of array functions: torsh-jit (`tj`)
when traced, numpy (the `NP` shim below, which adds the few functions numpy lacks,
computed in float64) for the reference, so the two cannot drift apart.
"""
from __future__ import annotations

import math
import types
import warnings
from dataclasses import dataclass, field

import numpy as np


# -- the numpy side of the functions torsh-jit has and numpy lacks --------------------------
def _float_dt(x):
    return np.exp(np.zeros(0, np.asarray(x).dtype)).dtype


def _via64(f):
    return lambda x: f(np.asarray(x, np.float64)).astype(_float_dt(x))


NP = types.SimpleNamespace(
    exp=np.exp, exp2=np.exp2, log=np.log, log2=np.log2, log1p=np.log1p, expm1=np.expm1,
    sqrt=np.sqrt, sin=np.sin, cos=np.cos, tan=np.tan, tanh=np.tanh, floor=np.floor,
    ceil=np.ceil, round=np.rint, sign=np.sign, abs=np.abs, where=np.where, maximum=np.maximum,
    minimum=np.minimum, logical_and=np.logical_and, logical_or=np.logical_or,
    logical_xor=np.logical_xor, logical_not=np.logical_not, clip=np.clip, sum=np.sum,
    prod=np.prod, mean=np.mean, max=np.max, min=np.min, any=np.any, all=np.all,
    argmax=np.argmax, argmin=np.argmin, matmul=np.matmul,
    sigmoid=_via64(lambda x: 1.0 / (1.0 + np.exp(-x))),
    erf=_via64(np.frompyfunc(math.erf, 1, 1)),
    rsqrt=_via64(lambda x: 1.0 / np.sqrt(x)),
    relu=lambda x: np.maximum(x, np.asarray(x).dtype.type(0)),
)


def reference(fn, args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out = fn(NP)(*args)
    return out if isinstance(out, tuple) else (out,)


# -- data -------------------------------------------------------------------------------------
def specials(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        return np.array([0, 1, -1, 2, -2, 7, -7, info.min, info.max, info.min + 1, info.max - 1], dtype)
    fi = np.finfo(dtype)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5,
         fi.smallest_subnormal, -fi.smallest_subnormal, fi.smallest_normal, fi.max, -fi.max,
         1e10, -1e10, 1e-10, 88.5, -104.0, 709.5, 3.14159265, 1.5707963]
    with np.errstate(over="ignore"):
        return np.array(v).astype(dtype)


def values(rng, dtype, n, scale=4.0, special=True):
    """n values of dtype: its special values, the rest normal draws times scale, shuffled."""
    dtype = np.dtype(dtype)
    if dtype.kind == "i":
        x = rng.integers(-100, 101, n).astype(dtype)
    else:
        x = (rng.standard_normal(n) * scale).astype(dtype)
    if special:
        sp = specials(dtype)[:n]
        x[:len(sp)] = sp
        rng.shuffle(x)
    return x


# -- cases ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tol:
    rtol: float = 0.0          # in eps of the output dtype (0: exact)
    atol: float = 0.0          # in eps of the output dtype
    zero_sign: bool = True     # signs of zeros must match (exact outputs)
    special: bool = False      # within rtol/atol, and where numpy gives 0 the sign must match


EXACT = Tol()
MATH = Tol(16, 4)              # vector math: a few ulp each side (ours and numpy's own)


@dataclass(frozen=True)
class Case:
    name: str
    fn: object                 # F -> the function of arrays
    make: object               # rng -> tuple of arguments
    tols: tuple = ()           # per output; missing entries are EXACT
    labels: tuple = ()
    default: Tol = field(default=EXACT)

    def tol(self, i) -> Tol:
        return self.tols[i] if i < len(self.tols) and self.tols[i] is not None else self.default

    def label(self, i) -> str:
        return self.labels[i] if i < len(self.labels) else f"output {i}"


UNARY_MATH = ("exp", "exp2", "expm1", "log", "log2", "log1p", "sin", "cos", "tan", "tanh",
              "sigmoid", "erf")


def _unary(dtype):
    def fn(F):
        def f(x, p, s):
            outs = [-x, F.abs(x), F.floor(x), F.ceil(x), F.round(x), F.sign(x), F.relu(x),
                    F.sqrt(p), F.rsqrt(p)]
            outs += [getattr(F, name)(s if name.startswith("exp") or name in ("sin", "cos", "tan")
                                      else p if name.startswith("log") else x)
                     for name in UNARY_MATH]
            return tuple(outs)
        return f

    def make(rng):
        n = 203
        x = values(rng, dtype, n)
        p = np.abs(values(rng, dtype, n))
        s = values(rng, dtype, n, scale=8.0)
        return x, p, s
    labels = ("neg", "abs", "floor", "ceil", "round", "sign", "relu", "sqrt", "rsqrt") + UNARY_MATH
    tols = (None,) * 6 + (Tol(zero_sign=False), Tol(1), Tol(2, 0)) + (MATH,) * len(UNARY_MATH)
    return Case(f"unary-{dtype}", fn, make, tols, labels)


def _binary(dtype):
    def fn(F):
        def f(x, y):
            bx, by = x > 0, y < 1
            return (x + y, x - y, x * y, x / y, x // y, x % y, F.maximum(x, y), F.minimum(x, y),
                    x ** y, F.abs(x) ** 1.5, x ** 2,
                    x == y, x != y, x < y, x <= y, x > y, x >= y,
                    F.where(bx, x, y), F.clip(x, -1.5, 2.0),
                    F.logical_and(bx, by), F.logical_or(bx, by), F.logical_xor(bx, by),
                    F.logical_not(bx))
        return f

    def make(rng):
        x = values(rng, dtype, 151)
        y = values(rng, dtype, 151)
        y[::7] = x[::7]                     # equal pairs for the comparisons
        return x, y
    labels = ("add", "sub", "mul", "truediv", "floordiv", "mod", "maximum", "minimum", "pow",
              "pow 1.5", "square", "eq", "ne", "lt", "le", "gt", "ge", "where", "clip",
              "and", "or", "xor", "not")
    tols = (None,) * 6 + (Tol(zero_sign=False),) * 2 + (MATH, MATH)
    return Case(f"binary-{dtype}", fn, make, tols, labels)


def _ints(dtype, wide="float64"):
    """wide: the float dtype of the conversions (float32 for targets without float64)."""
    def fn(F):
        def f(a, b, e, x):
            return (a + b, a - b, a * b, a // b, a % b, -a, F.abs(a), F.maximum(a, b),
                    F.minimum(a, b), F.sign(a), a == b, a < b, a >= b, F.where(a > b, a, b),
                    a ** e, a.astype(wide), (a > 0).astype(a.dtype), a != 0,
                    x.astype(a.dtype), a * 3 - 7, a + (a > b))
        return f

    def make(rng):
        a = values(rng, dtype, 131)
        b = values(rng, dtype, 131)
        b[::9] = 0                          # division by zero: numpy's 0
        b[1::11] = -1                       # MIN // -1
        e = rng.integers(0, 6, 131).astype(dtype)
        x = rng.uniform(-1000, 1000, 131).astype(wide)   # float -> int casts (finite, in range)
        return a, b, e, x
    labels = ("add", "sub", "mul", "floordiv", "mod", "neg", "abs", "maximum", "minimum", "sign",
              "eq", "lt", "ge", "where", "pow", f"to {wide}", "bool to int", "to bool",
              "float to int", "affine", "int + bool")
    return Case(f"ints-{dtype}" + ("" if wide == "float64" else f"-{wide}"), fn, make, (), labels)


def _views():
    def fn(F):
        def f(x, t, r, row, col, s):
            return (x + row,                        # strided 2-D view + a row (broadcast)
                    t * col,                        # transposed view * a column
                    r - s,                          # negative steps - a runtime scalar
                    F.exp(x) * row + col,           # (n,1) and (m,) broadcast to (n, m)
                    (x + 1).reshape(-1),            # a reshape of a view
                    F.where(x > 0, t, r),           # three layouts at once
                    x[1:, ::2] * 2,                 # slicing inside the kernel
                    x.sum(axis=0, keepdims=True) + row,
                    (t.T * 2)[::2],                 # a transpose inside the kernel
                    F.exp(t - t.max(axis=-1, keepdims=True)) /
                    F.exp(t - t.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True),
                    (x * row).sum(axis=-1))         # softmax of a transposed view (column
                                                    # form, scattered stores); a stride-2 row
        return f

    def make(rng):
        base = values(rng, "float32", 9 * 24, special=False).reshape(9, 24)
        x = base[::2, 1:22:2]                       # (5, 11), both axes strided
        t = values(rng, "float32", 11 * 5, special=False).reshape(11, 5).T      # (5, 11)
        r = values(rng, "float32", 5 * 22, special=False).reshape(5, 22)[::-1, ::-2]   # (5, 11)
        row = values(rng, "float32", 11, special=False)
        col = values(rng, "float32", 5, special=False).reshape(5, 1)
        return x, t, r, row, col, 0.75
    labels = ("x + row", "t * col", "r - s", "exp(x)*row+col", "reshape", "where", "slice",
              "sum keepdims + row", "transpose", "softmax of t", "strided row sum")
    # exp(x)*row + col can cancel: its error is a few ulp of the largest term (|exp(x)*row|
    # reaches ~200 here), not of the result, so the absolute bound is in units of that term.
    # The same for a column sum in another order (a GPU's tree, numpy's rows): each of its 4
    # additions rounds at half an ulp of a partial sum (|x| draws reach ~20, partial sums ~64),
    # so the result is held to 2 x 4 x 0.5 ulp(64) = 256 eps, not to its own ulp (a WGSL run
    # gave 0.2958760 against 0.2958775: 1.4e-6 off, 12 eps)
    return Case("views-broadcast", fn, make, (None, None, None, Tol(16, 1024), None, None, None,
                                               Tol(8, 256), None, Tol(16, 4), Tol(8, 256)),
                labels)


def _reductions(int_sum=True):
    """int_sum=False: m.min(axis=1) in place of m.sum(axis=1), whose numpy result is int64
    (for targets without 64-bit integers)."""
    def fn(F):
        def f(x, m):
            e = F.exp(x - x.max(axis=-1, keepdims=True))
            softmax = e / e.sum(axis=-1, keepdims=True)
            mu = x.mean(axis=-1, keepdims=True)
            var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
            layernorm = (x - mu) / F.sqrt(var + 1e-5)
            return (x.sum(axis=-1), x.sum(axis=0), F.sum(x), F.prod(x[:, :6] * 0.5 + 1, axis=1),
                    x.mean(axis=0), x.max(axis=1), x.min(axis=0), F.argmax(x, axis=1),
                    F.argmin(x, axis=0), F.any(x > 2.5, axis=1), F.all(x > -3, axis=1),
                    m.sum(axis=1) if int_sum else m.min(axis=1), m.max(axis=0), F.argmax(m, axis=1),
                    softmax, layernorm)
        return f

    def make(rng):
        x = values(rng, "float32", 37 * 300, scale=1.0, special=False).reshape(37, 300)
        m = values(rng, "int32", 23 * 17, special=True).reshape(23, 17)
        return x, m
    labels = ("sum -1", "sum 0", "sum all", "prod", "mean 0", "max 1", "min 0", "argmax", "argmin",
              "any", "all", "int sum", "int max", "int argmax", "softmax", "layernorm")
    # sum all: 11100 values, on a 4-lane target 16 float32 accumulators of ~700 each, whose
    # rounding walks to ~4e-5 (6e-5, 512 eps, failed 1 seed of many on aarch64-neon)
    tols = (Tol(8, 64), Tol(8, 64), Tol(8, 2048), Tol(16, 0), Tol(8, 8)) + (None,) * 9 + \
        (Tol(16, 4), Tol(16, 16))
    if not int_sum:
        labels = labels[:11] + ("int min",) + labels[12:]
    return Case("reductions-softmax-layernorm" + ("" if int_sum else "-int32"), fn, make, tols, labels)


def _matmuls(wide="float64"):
    """wide: the dtype of the batched case (float32 for targets without float64)."""
    def fn(F):
        def f(a, b, bias, c, d, bt, i, j):
            return (F.relu(a @ b + bias),           # fused epilogue
                    a @ bt,                         # transposed operand
                    c @ d,                          # float64 (wide), batched with broadcasting
                    i @ j)                          # int32
        return f

    def make(rng):
        a = rng.uniform(-1, 1, (13, 37)).astype(np.float32)
        b = rng.uniform(-1, 1, (37, 29)).astype(np.float32)
        bias = rng.uniform(-1, 1, 29).astype(np.float32)
        c = rng.uniform(-1, 1, (2, 1, 5, 9)).astype(wide)
        d = rng.uniform(-1, 1, (3, 9, 7)).astype(wide)
        bt = rng.uniform(-1, 1, (19, 37)).astype(np.float32).T
        i = rng.integers(-50, 50, (6, 11)).astype(np.int32)
        j = rng.integers(-50, 50, (11, 10)).astype(np.int32)
        return a, b, bias, c, d, bt, i, j
    tols = (Tol(16, 160, False), Tol(16, 160, False), Tol(16, 40, False), None)
    if wide != "float64":
        tols = tols[:2] + (Tol(16, 160, False),) + tols[3:]
    return Case("matmul" + ("" if wide == "float64" else f"-{wide}"), fn, make, tols,
                ("relu(a@b+bias)", "a @ b.T", f"batched {wide}", "int32"))


# Python numbers against arrays: numpy compares an int with an int32 array by value (x < 2**31
# is true everywhere), a float with an int32 or bool array exactly in float64 (x > 0.5), and a
# float with a float32 array in float32 (NEP 50); x == nan is false everywhere
_INT_NUMBERS = (0.5, -0.5, 3.0, -0.0, math.nan, math.inf, -math.inf, 1e-50, 16777216.5, 16777217.0,
                2147483647.5, 2147483648.0, -2147483648.5, 1e40, 2**31, 2**31 - 1, -2**31,
                -2**31 - 1, 2**40, 7)
_BOOL_NUMBERS = (0.5, -0.5, 1e-50, 1 - 1e-10, 1.0, 0.0, -0.0, math.nan, math.inf, 0, 1, 2, -1, 2**31)
_FLOAT_NUMBERS = (0.5, 0.1, -0.0, math.nan, math.inf, -math.inf, 1e40, -1e40, 1e-50, 1e-45,
                  3.4028235e38, 16777217, 2**31, -7)


def _compare_numbers():
    ops = ("lt", "le", "gt", "ge", "eq", "ne")
    cmp = {"lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
           "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b}

    def bits(x, c):
        """The 12 comparisons x OP c and c OP x as bits of one int32."""
        out = 0
        for k, op in enumerate(ops):
            out = out + cmp[op](x, c).astype(np.int32) * (1 << k) \
                + cmp[op](c, x).astype(np.int32) * (1 << (k + 6))
        return out

    def fn(F):
        def f(x, b, c, y):
            return (tuple(bits(x, n) for n in _INT_NUMBERS) + tuple(bits(b, n) for n in _BOOL_NUMBERS)
                    + tuple(bits(y, n) for n in _FLOAT_NUMBERS)
                    + (bits(b, c), bits(b, b), F.where(y > 0.5, y, 0), F.where(x > 0.5, x, 0)))
        return f

    def make(rng):
        x = values(rng, "int32", 97)
        x[-12:] = [16777216, 16777217, -16777217, 2**31 - 1, -2**31, -2**31 + 1, 3, 0, -1, 7, 8, 6]
        rng.shuffle(x)
        b, c = rng.random(97) < 0.5, rng.random(97) < 0.5
        return x, b, c, values(rng, "float32", 97)
    labels = tuple(f"int32 vs {n!r}" for n in _INT_NUMBERS) + \
        tuple(f"bool vs {n!r}" for n in _BOOL_NUMBERS) + \
        tuple(f"float32 vs {n!r}" for n in _FLOAT_NUMBERS) + \
        ("bool vs bool", "bool vs itself", "where(y > 0.5, y, 0)", "where(x > 0.5, x, 0)")
    return Case("compare-python-numbers", fn, make, (), labels)


# The IEEE special cases of the array API standard's elementwise functions: +-0, +-inf, NaN,
# values next to 0 (the smallest subnormal and normal) and to the overflow thresholds (max,
# and where exp, exp2, expm1, sigmoid and tanh saturate), and a few ordinary ones; every
# unary op on all of them (log and sqrt of negatives included), every binary op on every
# ordered pair (so both argument orders).
_SPECIAL_COMMON = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1.5707964,
                   9.0, -9.0, 1e-7, -1e-7]
_SPECIAL_ARGS = {   # next to 0, and the thresholds of each dtype (exp, expm1, exp2 overflow/underflow)
    "float32": _SPECIAL_COMMON + [1e-45, -1e-45, 1.1754944e-38, -1.1754944e-38, 3.4028235e38,
                                  -3.4028235e38, 88.72283, 88.72284, -87.33655, -103.97208, -104.0,
                                  127.99999, 128.0, -149.0, -150.0],
    "float64": _SPECIAL_COMMON + [5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308,
                                  1.7976931348623157e308, -1.7976931348623157e308, 709.782712893384,
                                  709.7827128933841, -708.3964185322641, -745.1332191019412, -746.0,
                                  1023.9999999999999, 1024.0, -1074.0, -1075.0],
}
_SPECIAL_UNARY = ("neg", "abs", "floor", "ceil", "round", "sign", "relu", "sqrt", "rsqrt") + UNARY_MATH
_SPECIAL_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "maximum", "minimum", "pow",
                   "eq", "lt", "ge")


def _specials_case(dtype):
    def fn(F):
        def f(x, a, b):
            ops = {"neg": lambda v: -v, "abs": F.abs, "floor": F.floor, "ceil": F.ceil,
                   "round": F.round, "sign": F.sign, "relu": F.relu, "sqrt": F.sqrt,
                   "rsqrt": F.rsqrt, **{n: getattr(F, n) for n in UNARY_MATH}}
            two = {"add": lambda u, v: u + v, "sub": lambda u, v: u - v, "mul": lambda u, v: u * v,
                   "truediv": lambda u, v: u / v, "floordiv": lambda u, v: u // v,
                   "mod": lambda u, v: u % v, "maximum": F.maximum, "minimum": F.minimum,
                   "pow": lambda u, v: u ** v, "eq": lambda u, v: u == v,
                   "lt": lambda u, v: u < v, "ge": lambda u, v: u >= v}
            return tuple(ops[n](x) for n in _SPECIAL_UNARY) + \
                tuple(two[n](a, b) for n in _SPECIAL_BINARY)
        return f

    def make(rng):
        x = np.array(_SPECIAL_ARGS[dtype], dtype)
        perm = rng.permutation(x.size)          # a fresh order each run; every value present
        x = x[perm]
        return x, x[:, None].copy(), x[None, :].copy()
    exact_signs = Tol(zero_sign=True)
    math = Tol(16, 4, special=True)
    tols = (exact_signs,) * 6 + (Tol(zero_sign=False), exact_signs, Tol(2, 0, special=True)) + \
        (math,) * len(UNARY_MATH) + (exact_signs,) * 6 + \
        (Tol(zero_sign=False),) * 2 + (math,) + (EXACT,) * 3     # max/min of +-0: either zero
    return Case(f"specials-{dtype}", fn, make, tols, _SPECIAL_UNARY + _SPECIAL_BINARY)


CASES = [_unary("float32"), _unary("float64"), _binary("float32"), _binary("float64"),
         _ints("int32"), _ints("int64"), _views(), _reductions(), _matmuls(), _compare_numbers(),
         _specials_case("float32"), _specials_case("float64")]
# the same ops for targets without 64-bit types, in their place
NARROW_CASES = [_ints("int32", wide="float32"), _ints("int64", wide="float32"), _matmuls(wide="float32"),
                _reductions(int_sum=False)]


def case_dtypes(case) -> set:
    """The dtypes a case computes in: of its arguments and of every traced value, except the
    positions argmax/argmin give (int64 in numpy, held in the target's own index type)."""
    import torsh_jit as tj
    from torsh_jit.ir.tracer import spec_of, trace
    args = case.make(np.random.default_rng(0))
    g, _ = trace(case.fn(tj), tuple(spec_of(a, index=i) for i, a in enumerate(args)))
    out = {s.dtype for s in map(spec_of, args) if not s.weak}
    positions: set = set()          # argmax/argmin results and views of them
    for i, n in enumerate(g.nodes):
        if n.op in ("argmax", "argmin") or (n.inputs and all(j in positions for j in n.inputs)
                                             and n.dtype == "int64"):
            positions.add(i)
        elif not (n.op == "const" or n.weak):
            out.add(n.dtype)
    return out


def cases_for(dtypes) -> list:
    """The corpus for a target computing in `dtypes` (empty: every dtype): every case within
    them, and where the target lacks float64, the narrow twins of the cases that need it."""
    if not dtypes:
        return list(CASES)
    fits = lambda c: case_dtypes(c) <= set(dtypes)   # noqa: E731
    return [c for c in CASES if fits(c)] + \
        ([c for c in NARROW_CASES if fits(c)] if "float64" not in dtypes else [])


def flush_subnormals(args) -> tuple:
    """The arguments as a device that flushes subnormal inputs reads them: each subnormal
    float a zero of its sign."""
    out = []
    for a in args:
        if isinstance(a, float):              # a Python float stays one (weak, NEP 50)
            a = math.copysign(0.0, a) if a != 0 and abs(a) < np.finfo(np.float32).tiny else a
        elif isinstance(a, np.ndarray) and a.dtype.kind == "f":
            sub = (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)
            a = np.where(sub, np.copysign(a.dtype.type(0), a), a).astype(a.dtype)
        out.append(a)
    return tuple(out)


def check(case: Case, got, want, dtype_eps=None, flushes=False, flushed=None) -> None:
    """Every output: dtype and shape as numpy's; values exact or within the case's tolerance.
    flushes: the device may flush subnormal float results to zero (a zero of either sign
    passes where numpy's value is subnormal); flushed: numpy's outputs for the arguments with
    subnormal inputs flushed (flush_subnormals), which such a device may give instead,
    element by element. Nothing else is relaxed."""
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        if flushes and w.dtype.kind == "f" and g.shape == w.shape and g.dtype == w.dtype:
            sub = (w != 0) & (np.abs(w) < np.finfo(w.dtype).tiny) & (g == 0)
            g = np.where(sub, w, g)
        if flushed is not None and g.shape == w.shape and g.dtype == w.dtype:
            f = np.asarray(flushed[i])
            if w.dtype.kind == "f":
                e = float(np.finfo(w.dtype).eps) * max(1.0, case.tol(i).rtol)
                same = (np.isclose(g, f, rtol=e, atol=0, equal_nan=True)
                        & (np.signbit(g) == np.signbit(f)) | np.isnan(g) & np.isnan(f))
            else:
                same = g == f
            w = np.where(same, f, w)
        what = f"{case.name}: {case.label(i)}"
        assert g.dtype == w.dtype, f"{what}: dtype {g.dtype}, numpy gives {w.dtype}"
        assert g.shape == w.shape, f"{what}: shape {g.shape}, numpy gives {w.shape}"
        tol = case.tol(i)
        if w.dtype.kind == "f" and (tol.rtol or tol.atol):
            e = float(np.finfo(w.dtype).eps)
            np.testing.assert_allclose(g, w, rtol=tol.rtol * e, atol=tol.atol * e, equal_nan=True,
                                       err_msg=what)
            if tol.special:
                z = w == 0
                np.testing.assert_array_equal(np.signbit(g[z]), np.signbit(w[z]),
                                              err_msg=f"{what}: a zero of the wrong sign (or not 0)")
                np.testing.assert_array_equal(g[np.isinf(w)], w[np.isinf(w)],
                                              err_msg=f"{what}: an infinity differs")
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)
            if w.dtype.kind == "f" and tol.zero_sign:
                z = (w == 0) & (g == 0)
                np.testing.assert_array_equal(np.signbit(g[z]), np.signbit(w[z]),
                                              err_msg=f"{what}: sign of zero differs")
