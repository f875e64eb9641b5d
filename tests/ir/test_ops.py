"""Every op of the op table against its numpy reference.

Each test compiles ONE kernel over many arrays at once (variadic kernels: one module
holds a kernel per array), so sizes 0/1/odd/prime, non-contiguous layouts and special
values cost one compilation per (op, dtype) instead of one each.

Expected values always come from numpy on the same freshly drawn data.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import torsh_jit as tj

DTYPES = ("bool", "int32", "int64", "float32", "float64")
INTS = ("int32", "int64")
FLOATS = ("float32", "float64")


# -- data ------------------------------------------------------------------------------------
def draw(rng, shape, dtype, domain="any"):
    """Random values of `dtype`: mostly moderate, some tiny and huge magnitudes (floats)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        small = rng.integers(-100, 101, shape, dtype=dtype)
        big = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        x = np.where(rng.random(shape) < 0.8, small, big)
        if domain == "pos":
            x = np.abs(small) + 1
        return x.astype(dtype)
    n = rng.standard_normal(shape) * 4
    mag = np.exp(rng.uniform(-30, 30, shape)) * rng.choice([-1.0, 1.0], shape)
    x = np.where(rng.random(shape) < 0.8, n, mag)
    lo, hi = DOMAINS.get(domain, (None, None))
    if lo is not None:
        x = rng.uniform(lo, hi, shape)
    if domain == "pos":
        x = np.abs(x)
    return x.astype(dtype)


# value ranges where an op's result is a finite, representable number most of the time
DOMAINS = {"exp": (-80.0, 80.0), "trig": (-100.0, 100.0), "small": (-10.0, 10.0),
           "unit": (-1.0, 1.0)}


def specials(dtype):
    """Values that break naive implementations."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.array([False, True, True, False])
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        return np.array([0, 1, -1, 2, -2, 7, -7, info.min, info.max, info.min + 1, info.max - 1],
                        dtype=dtype)
    fi = np.finfo(dtype)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.5,
         fi.smallest_subnormal, -fi.smallest_subnormal, fi.smallest_normal, -fi.smallest_normal,
         fi.max, -fi.max, 1e10, -1e10, 1e-10, -1e-10, 0.49999997, 4503599627370497.0]
    with np.errstate(over="ignore"):
        return np.array(v).astype(dtype)


def values(rng, dtype, n, domain="any"):
    """n values: every special value of the dtype, the rest drawn from `domain`, shuffled."""
    sp = specials(dtype)
    x = np.concatenate([sp, draw(rng, (max(n - len(sp), 0),), dtype, domain)])
    rng.shuffle(x)
    return x[:n]


def few_layouts(rng, make):
    """Two shape classes per op: contiguous odd size, non-contiguous 3-D with a negative
    step. The full list of layouts runs on a few ops (test_layouts)."""
    return [make(257), make(4 * 7 * 6).reshape(4, 7, 6)[:, ::-2, 1:]]


def layouts(rng, make):
    """Arrays of every shape class: empty, 1, odd/prime sizes, 2-D/3-D, non-contiguous."""
    def m(*shape):
        return make(int(np.prod(shape))).reshape(shape)
    return [m(0), m(1), m(7), m(31), m(257), m(1031), m(3, 0, 2), m(3, 4, 5),
            m(5, 7).T,                      # transposed
            m(1031)[::3],                   # strided
            m(300)[::-2],                   # negative step
            m(4, 6, 5)[:, ::-1, 1:4],       # negative step inside a 3-D slice
            m(2, 3, 4, 5).transpose(2, 0, 3, 1),   # 4-D permuted
            ]


def check(got, want, tol=0.0, atol=0.0, zero_sign=True):
    """Same dtype and shape; equal (exact, zeros' signs included) or within rtol=tol.

    zero_sign=False: numpy's own answer for the sign of a zero is not specified (maximum
    of -0.0 and 0.0 is whichever operand the machine's max instruction returns)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"dtype {got.dtype}, numpy gives {want.dtype}"
    assert got.shape == want.shape, f"shape {got.shape}, numpy gives {want.shape}"
    if tol == 0 and atol == 0:
        np.testing.assert_array_equal(got, want)
        if want.dtype.kind == "f" and zero_sign:
            z = (want == 0) & (got == 0)
            np.testing.assert_array_equal(np.signbit(got[z]), np.signbit(want[z]),
                                          err_msg="sign of zero differs")
    else:
        np.testing.assert_allclose(got, want, rtol=tol, atol=atol, equal_nan=True)


def _culprits(got, want, *args, n=6) -> str:
    """The first inputs where got and want differ (beyond a relative 1e-6), as text."""
    got, want = np.asarray(got), np.asarray(want)
    with np.errstate(all="ignore"):
        same = (got == want) | (np.isnan(got) & np.isnan(want)) if want.dtype.kind == "f" \
            else got == want
        if want.dtype.kind == "f":
            same |= np.isclose(got, want, rtol=1e-6, atol=0)
    if got.shape != want.shape:
        return ""
    idx = np.argwhere(~same)[:n]
    args = [np.broadcast_to(a, want.shape) for a in args]
    return "".join(f"\n  at {tuple(i)}: inputs {[a[tuple(i)] for a in args]} -> {got[tuple(i)]!r}, "
                   f"numpy {want[tuple(i)]!r}" for i in idx) + "\n"


def ref(fn, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args)


def eps(dtype):
    return float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0


def supported_result(fn, *dtypes) -> bool:
    """numpy accepts the op on these dtypes and the result is a dtype torsh-jit runs."""
    try:
        r = ref(fn, *[np.zeros(1, d) for d in dtypes])
    except TypeError:
        return False
    return np.asarray(r).dtype.name in DTYPES


# -- unary -------------------------------------------------------------------------------
# float-valued ops numpy lacks: computed in float64, result dtype as numpy's exp gives
def _float_dt(x):
    return np.exp(np.zeros(0, x.dtype)).dtype


def _erf(x):
    import math
    f = np.frompyfunc(math.erf, 1, 1)
    return f(x.astype(np.float64)).astype(np.float64).astype(_float_dt(x))


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(_float_dt(x))


def _rsqrt(x):
    return (1.0 / np.sqrt(x.astype(np.float64))).astype(_float_dt(x))


def _relu(x):
    return np.maximum(x, x.dtype.type(0)) if x.dtype != np.bool_ else x.copy()


# op: (torsh_jit function, numpy reference, tolerance in ulps (0 = exact), domain of draws)
UNARY = {
    "neg": (tj.neg, np.negative, 0, "any"),
    "abs": (tj.abs, np.abs, 0, "any"),
    "floor": (tj.floor, np.floor, 0, "any"),
    "ceil": (tj.ceil, np.ceil, 0, "any"),
    "round": (tj.round, np.rint, 0, "any"),
    "sign": (tj.sign, np.sign, 0, "any"),
    "relu": (tj.relu, _relu, 0, "any"),     # zero signs: see NO_ZERO_SIGN
    "logical_not": (tj.logical_not, np.logical_not, 0, "any"),
    "sqrt": (tj.sqrt, np.sqrt, 1, "pos"),
    "rsqrt": (tj.rsqrt, _rsqrt, 2, "pos"),
    "exp": (tj.exp, np.exp, 4, "exp"),
    "exp2": (tj.exp2, np.exp2, 4, "exp"),
    "expm1": (tj.expm1, np.expm1, 4, "exp"),
    "log": (tj.log, np.log, 4, "pos"),
    "log2": (tj.log2, np.log2, 4, "pos"),
    "log1p": (tj.log1p, np.log1p, 4, "pos"),
    "sin": (tj.sin, np.sin, 4, "trig"),
    "cos": (tj.cos, np.cos, 4, "trig"),
    "tan": (tj.tan, np.tan, 8, "trig"),
    "tanh": (tj.tanh, np.tanh, 4, "small"),
    "sigmoid": (tj.sigmoid, _sigmoid, 4, "small"),
    "erf": (tj.erf, _erf, 4, "small"),
}
NO_ZERO_SIGN = {"relu", "maximum", "minimum"}
# absolute tolerance (in eps of the result dtype) where the result crosses zero
UNARY_ATOL = {"sin": 4, "cos": 4, "tan": 4, "log": 2, "log2": 2, "expm1": 1, "log1p": 1,
              "tanh": 1, "erf": 1}


def _variadic(fn):
    """A kernel applying fn to each argument: one module for many layouts."""
    return tj.kernel(lambda *xs: tuple(fn(x) for x in xs))


def _run_all(kern, arrays):
    out = kern(*arrays)
    return out if isinstance(out, tuple) else (out,)


UNARY_CASES = [(op, d) for op, (_, f, _, _) in UNARY.items() for d in DTYPES if supported_result(f, d)]


@pytest.mark.parametrize("op,dtype", UNARY_CASES)
def test_unary(op, dtype, rng):
    fn, npf, ulps, domain = UNARY[op]
    arrays = few_layouts(rng, lambda n: values(rng, dtype, n, domain))
    outs = _run_all(_variadic(fn), arrays)
    want_dt = ref(npf, np.zeros(1, dtype)).dtype
    tol = ulps * eps(want_dt)
    atol = UNARY_ATOL.get(op, 0) * eps(want_dt)
    for x, got in zip(arrays, outs):
        check(got, ref(npf, x), tol, atol, zero_sign=op not in NO_ZERO_SIGN)


@pytest.mark.parametrize("op,dtype", [(op, d) for op, (_, f, _, _) in UNARY.items() for d in DTYPES
                                      if not supported_result(f, d)])
def test_unary_rejected_dtypes(op, dtype):
    """numpy rejects the op (neg of bool), or gives a dtype torsh-jit has not (float16 for
    exp of bool): a DTypeError at trace time, naming the user's line and a cast that works."""
    k = tj.kernel(lambda x: UNARY[op][0](x))
    with pytest.raises(tj.DTypeError) as ei:
        k(np.zeros(3, dtype))
    assert ei.value.where and __file__ in ei.value.where
    assert ei.value.hint


LAYOUT_CASES = [("neg", "float32"), ("abs", "int32"), ("logical_not", "bool"), ("exp", "float64"),
                ("sign", "int64")]


@pytest.mark.parametrize("op,dtype", LAYOUT_CASES)
def test_layouts(op, dtype, rng):
    """Sizes 0, 1, odd and prime; transposed, strided, negative-step inputs."""
    fn, npf, ulps, domain = UNARY[op]
    arrays = layouts(rng, lambda n: values(rng, dtype, n, domain))
    outs = _run_all(_variadic(fn), arrays)
    tol = ulps * eps(ref(npf, np.zeros(1, dtype)).dtype)
    for x, got in zip(arrays, outs):
        check(got, ref(npf, x), tol)


# -- binary ------------------------------------------------------------------------------
BINARY = {
    "add": (tj.add, np.add, 0), "sub": (tj.sub, np.subtract, 0), "mul": (tj.mul, np.multiply, 0),
    "truediv": (tj.truediv, np.true_divide, 0), "floordiv": (tj.floordiv, np.floor_divide, 0),
    "mod": (tj.mod, np.remainder, 0), "pow": (tj.pow, np.power, 8),
    "maximum": (tj.maximum, np.maximum, 0), "minimum": (tj.minimum, np.minimum, 0),
    "eq": (tj.eq, np.equal, 0), "ne": (tj.ne, np.not_equal, 0), "lt": (tj.lt, np.less, 0),
    "le": (tj.le, np.less_equal, 0), "gt": (tj.gt, np.greater, 0), "ge": (tj.ge, np.greater_equal, 0),
    "logical_and": (tj.logical_and, np.logical_and, 0), "logical_or": (tj.logical_or, np.logical_or, 0),
    "logical_xor": (tj.logical_xor, np.logical_xor, 0),
}
MIXED = [("int32", "int64"), ("int32", "float32"), ("int64", "float32"), ("float32", "float64"),
         ("bool", "int32"), ("bool", "float64"), ("int64", "float64")]
MIXED_OPS = ("add", "sub", "truediv", "floordiv", "mod", "maximum", "lt", "eq", "logical_xor")


def _int_pow_exponent(b):
    """numpy raises for negative integer exponents (a documented limitation here)."""
    return np.abs(b % 70) if b.dtype.kind == "i" else b


OP_GROUPS = {"arith": ("add", "sub", "mul", "truediv", "maximum", "minimum"),
             "divmod": ("floordiv", "mod"), "pow": ("pow",),
             "compare": ("eq", "ne", "lt", "le", "gt", "ge"),
             "logical": ("logical_and", "logical_or", "logical_xor")}


def binary_pairs(rng, dt_a, dt_b, full=True):
    """(a, b) pairs: every special value against every other, broadcasting (0-d, row,
    column, 3-D against 1-D), non-contiguous operands, sizes 0 and 1."""
    def v(dtype, *shape):
        n = int(np.prod(shape))
        return values(rng, dtype, n).reshape(shape)
    sa, sb = specials(dt_a), specials(dt_b)
    pairs = [
        (np.repeat(sa, len(sb)), np.tile(sb, len(sa))),            # specials x specials
        (v(dt_a, 3, 4, 5), v(dt_b, 5)),                            # 3-D against 1-D
    ]
    if full:
        pairs += [
            (v(dt_a, 31), v(dt_b, 1)[0]),                          # 0-d array: a scalar argument
            (v(dt_a, 7, 5), v(dt_b, 7, 1)),                        # column
            (v(dt_a, 1, 6), v(dt_b, 5, 1)),                        # outer
            (v(dt_a, 6, 9).T[::-1], v(dt_b, 12)[::-2]),            # transposed, reversed, strided
            (v(dt_a, 0), v(dt_b, 1)),
        ]
    return pairs


def run_binary(ops, dt_a, dt_b, rng, full=True):
    """One kernel computing every op of `ops` on every pair."""
    ops = [op for op in ops if supported_result(BINARY[op][1], dt_a, dt_b)]
    if not ops:
        pytest.skip("numpy rejects these dtypes for every op of the group")
    pairs = binary_pairs(rng, dt_a, dt_b, full)
    # every op of the group on the same pair fuses into one kernel; pow gets its own pairs
    # (integer exponents made non-negative)
    sets = {op: 1 if op == "pow" else 0 for op in ops}
    operands = [pairs, [(a, _int_pow_exponent(b)) for a, b in pairs]]
    exps = {op: operands[sets[op]] for op in ops}
    n = len(pairs)

    def f(*xs):
        out = []
        for op in ops:
            base = 2 * n * sets[op]
            out += [BINARY[op][0](xs[base + 2 * k], xs[base + 2 * k + 1]) for k in range(n)]
        return tuple(out)
    args = [x for p in pairs for x in p] + [x for p in operands[1] for x in p]
    outs = iter(_run_all(tj.kernel(f), args))
    for op in ops:
        npf, ulps = BINARY[op][1], BINARY[op][2]
        want_dt = np.asarray(ref(npf, np.zeros(1, dt_a), np.zeros(1, dt_b))).dtype
        for k, (a, b) in enumerate(exps[op]):
            # numpy's power loop turns a scalar (or stride-0) exponent of 0.5 into sqrt:
            # (-inf)**0.5 is nan there and inf (as in C) with an array exponent. Compare
            # with the array form.
            bb = np.broadcast_to(b, np.broadcast_shapes(np.shape(a), np.shape(b))).copy() \
                if op == "pow" else b
            got, want = next(outs), ref(npf, a, bb)
            try:
                check(got, want, ulps * eps(want_dt), ulps * eps(want_dt),
                      zero_sign=op not in NO_ZERO_SIGN)
            except AssertionError as e:
                raise AssertionError(f"{op}({a.dtype}{a.shape}, {np.asarray(b).dtype}"
                                     f"{np.shape(b)}) (pair {k}): {_culprits(got, want, a, b)}"
                                     f"{e}") from None


@pytest.mark.parametrize("group", OP_GROUPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary(group, dtype, rng):
    # every broadcasting and layout case for one dtype of each family, the core ones for all
    run_binary(OP_GROUPS[group], dtype, dtype, rng, full=dtype in ("bool", "int32", "float32"))


@pytest.mark.parametrize("ops", [MIXED_OPS, ("pow",)], ids=["ops", "pow"])
@pytest.mark.parametrize("dts", MIXED, ids="-".join)
def test_binary_mixed(dts, ops, rng):
    """Mixed dtypes: numpy's promotion, operands converted before the op."""
    run_binary(ops, dts[0], dts[1], rng, full=False)


# -- scalars and NEP 50 -------------------------------------------------------------------
SCALARS = [0, 3, -7, 2.5, -0.0, float("nan"), True, False,
           np.float32(1.5), np.float64(-2.25), np.int32(5), np.int64(-3), np.bool_(True),
           np.array(2.5), np.array(4, np.int32), np.array(True), np.array(-2.5, np.float32)]
SCALAR_OPS = {"add": (lambda a, b: a + b), "rsub": (lambda a, b: b - a), "mul": (lambda a, b: a * b),
              "truediv": (lambda a, b: a / b), "rfloordiv": (lambda a, b: b // a),
              "mod": (lambda a, b: a % b), "maximum": np.maximum, "lt": (lambda a, b: a < b),
              "eq": (lambda a, b: a == b), "where": (lambda a, b: np.where(a > 1, a, b))}


def _numpy_accepts(fn, x, s):
    try:
        ref(fn, x, s)
    except TypeError:
        return False
    r = np.asarray(ref(fn, x[:1], s))
    return r.dtype.name in DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar_arguments(dtype, rng):
    """Scalars passed at call time (Python, numpy, 0-d arrays) are runtime values with
    numpy's promotion: Python scalars are weak (NEP 50), numpy scalars are not."""
    x = values(rng, dtype, 37)
    names = list(SCALAR_OPS)
    # each scalar meets add and two more ops in turn (every op meets every kind of scalar)
    cases = [(name, SCALAR_OPS[name], s) for k, s in enumerate(SCALARS)
             for name in {"add", names[(k + DTYPES.index(dtype)) % len(names)]}
             if _numpy_accepts(SCALAR_OPS[name], x, s)]
    scal = [s for _, _, s in cases]
    kern = tj.kernel(lambda x, *ss: tuple(fn(x, s) for (_, fn, _), s in zip(cases, ss)))
    outs = _run_all(kern, [x] + scal)
    for (name, fn, s), got in zip(cases, outs):
        want = np.asarray(ref(fn, x, s))
        try:
            check(got, want, zero_sign=name != "maximum")
        except AssertionError as e:
            raise AssertionError(f"{name}({dtype} array, {s!r}): {e}") from None
    # a new scalar value reuses the compiled code and gives numpy's answer for it
    scal2 = [type(s)(not s) if isinstance(s, (bool, np.bool_)) else
             np.asarray(np.asarray(s) * 3 - 1).astype(s.dtype) if isinstance(s, np.ndarray) else
             type(s)(s * 3 - 1) for s in scal]
    compiled = len(kern._specs)
    outs2 = _run_all(kern, [x] + scal2)
    assert len(kern._specs) == compiled, "a new scalar value must not recompile"
    for (name, fn, _), s, got in zip(cases, scal2, outs2):
        check(got, np.asarray(ref(fn, x, s)), zero_sign=name != "maximum")


@pytest.mark.parametrize("dtype", DTYPES)
def test_constants(dtype, rng):
    """Constants written in the kernel: weak Python scalars and strong numpy scalars."""
    fns = [lambda x: x + 2, lambda x: x * 2.5, lambda x: 1 - x * 1, lambda x: x / 3,
           lambda x: x + np.float32(0.5), lambda x: x * np.int32(3), lambda x: x - np.int64(1) * 1,
           lambda x: x < 2, lambda x: x >= 1.5, lambda x: np.maximum(x, 0),
           lambda x: x ** 2, lambda x: x ** 3, lambda x: x ** 0.5, lambda x: x == True,
           lambda x: (x * 1) // 2, lambda x: x % 3]
    x = values(rng, dtype, 41)
    x = np.where(np.isfinite(x), x, 1).astype(dtype) if x.dtype.kind == "f" else x
    ok = []
    for f in fns:
        try:
            w = np.asarray(ref(f, x))
        except TypeError:
            continue
        if w.dtype.name in DTYPES:
            ok.append((f, w))
    outs = _run_all(tj.kernel(lambda x: tuple(f(x) for f, _ in ok)), [x])
    for k, ((f, want), got) in enumerate(zip(ok, outs)):
        # x**3 is x*x*x (two roundings) where numpy calls pow(): a few ulp apart
        tol = 4 * eps(want.dtype) if want.dtype.kind == "f" else 0
        try:
            check(got, want, tol, zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"constant case {k}: {e}") from None


@pytest.mark.parametrize("dtype", INTS)
def test_python_int_out_of_range(dtype, rng):
    """numpy raises OverflowError for int32_array + 2**40, and compares such ints by value."""
    x = values(rng, dtype, 19)
    big = 2 ** 40 if dtype == "int32" else 2 ** 62
    if dtype == "int32":
        with pytest.raises(tj.DTypeError, match="out of bounds"):
            tj.kernel(lambda x: x + big)(x)
        with pytest.raises(tj.ArgumentError, match="out of bounds"):
            tj.kernel(lambda x, s: x * s)(x, big)
        # the same kernel runs for values that fit
        np.testing.assert_array_equal(tj.kernel(lambda x, s: x * s)(x, 3), x * 3)
        # np.where is not a ufunc: numpy wraps the value around instead of raising
        c = np.arange(x.size) % 2 == 0
        check(tj.kernel(lambda c, x, s: np.where(c, x, s))(c, x, big), np.where(c, x, big))
        check(tj.kernel(lambda c, x: np.where(c, x, big))(c, x), np.where(c, x, big))
    for fn in (lambda x, s: x < s, lambda x, s: x == s, lambda x, s: x >= -s):
        check(tj.kernel(fn)(x, big), fn(x, big))
        check(tj.kernel(lambda x: fn(x, big))(x), fn(x, big))


# -- casts -----------------------------------------------------------------------------------
def _in_range_for_ints(x):
    """float values every int dtype holds (float -> int of NaN/inf/out-of-range saturates
    here where numpy gives INT_MIN: a documented limitation)."""
    if x.dtype.kind != "f":
        return x
    lim = 2.0 ** 31 - 256
    return np.where(np.isfinite(x) & (np.abs(x) < lim), x, 7.5).astype(x.dtype)


@pytest.mark.parametrize("src", DTYPES)
def test_casts(src, rng):
    """x.astype(every dtype), from every dtype, several layouts, special values."""
    arrays = few_layouts(rng, lambda n: values(rng, src, n))
    safe = [_in_range_for_ints(a) for a in arrays]

    def f(*xs):
        n = len(xs) // 2
        return tuple(xs[k + (n if np.dtype(d).kind == "i" else 0)].astype(d)
                     for k in range(n) for d in DTYPES)
    outs = iter(_run_all(tj.kernel(f), arrays + safe))
    for x, xs in zip(arrays, safe):
        for d in DTYPES:
            src_x = xs if np.dtype(d).kind == "i" else x
            try:
                check(next(outs), ref(lambda a: a.astype(d), src_x))
            except AssertionError as e:
                raise AssertionError(f"{src} -> {d}: {e}") from None


def test_cast_methods_and_functions(rng):
    """astype via the method, tj.astype, and casts fused between ops."""
    x = values(rng, "float64", 101)
    x = np.where(np.isfinite(x), x, 0.25)
    k = tj.kernel(lambda x: (tj.astype(x, np.float32) * 2, (x > 0).astype(np.int32) + 1,
                             x.astype("float32").astype("float64")))
    a, b, c = k(x)
    check(a, x.astype(np.float32) * 2)
    check(b, (x > 0).astype(np.int32) + 1)
    check(c, x.astype("float32").astype("float64"))


# -- reductions ------------------------------------------------------------------------------
REDUCTIONS = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "mean": np.mean,
              "argmax": np.argmax, "argmin": np.argmin, "any": np.any, "all": np.all}
AXES = [0, 1, 2, -1, (0, 2), (1, 2), (0, 1, 2), None, (2, 0)]


def _reduction_data(rng, op, dtype, shape):
    """Values for which numpy's answer is well conditioned (sums without cancellation
    blow-up, products near 1) and ties for arg-reductions."""
    d = np.dtype(dtype)
    n = int(np.prod(shape))
    if d.kind == "f" and op in ("sum", "mean"):
        return rng.uniform(-1, 1, shape).astype(d) + 2
    if d.kind == "f" and op == "prod":
        return (rng.uniform(0.9, 1.1, shape) * rng.choice([-1, 1], shape)).astype(d)
    if op in ("argmax", "argmin", "max", "min") and d.kind != "b":
        x = rng.integers(-3, 4, shape).astype(d)          # ties everywhere
        if d.kind == "f":
            x[rng.random(shape) < 0.01] = np.nan           # numpy: the first NaN wins
        return x
    if op == "mean" and d.kind == "i":      # float64 sums of +-9e18 cancel to noise
        return rng.integers(-1000, 1000, shape).astype(d)
    if op in ("any", "all"):
        return (rng.random(shape) < (0.9 if op == "all" else 0.1)).astype(d)   # rows of one value
    return values(rng, dtype, n).reshape(shape)


def _tol(op, dtype, n):
    d = ref(REDUCTIONS[op], np.zeros(2, dtype)).dtype
    if op in ("sum", "mean", "prod") and d.kind == "f":
        return 1e-5 if d == np.float32 else 1e-12
    return 0.0


def _red_ref(op, x, axis, keepdims):
    f = REDUCTIONS[op]
    return ref(lambda a: f(a, axis=axis) if op.startswith("arg") else f(a, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions(op, dtype, rng):
    """Every axis, several axes, None, keepdims; contiguous and transposed inputs."""
    f = REDUCTIONS[op]
    if not supported_result(lambda a: f(a), dtype):
        pytest.skip("numpy rejects this dtype")
    x = _reduction_data(rng, op, dtype, (5, 7, 9))
    xt = _reduction_data(rng, op, dtype, (9, 7, 5)).transpose(2, 1, 0)   # non-contiguous
    axes = [a for a in AXES if not op.startswith("arg") or a is None or isinstance(a, int)]

    # keepdims alternates (it only reshapes the result); the transposed input meets a subset
    cases = [(0, a, k % 2 == 1 and not op.startswith("arg")) for k, a in enumerate(axes)
             if a != -1 and a != (0, 1, 2)]
    cases += [(1, a, False) for a in axes if a in (-1, None) or a == (0, 2)]
    # the axis handling is shared by every reduction: the whole matrix runs for sum and
    # argmax on one dtype of each family, a few cases for the other (op, dtype) pairs
    if dtype in ("int64", "float64") or op not in ("sum", "argmax"):
        kd = not op.startswith("arg")
        cases = [(0, 1, kd), (1, None, False), (0, (0, 2) if kd else 0, False)]

    def kern(x, xt):
        out = []
        for src, a, kd in cases:
            v = (x, xt)[src]
            out.append(getattr(tj, op)(v, a) if op.startswith("arg") else getattr(tj, op)(v, a, kd))
        return tuple(out)
    outs = _run_all(tj.kernel(kern), [x, xt])
    for (src, a, kd), got in zip(cases, outs):
        want = np.asarray(_red_ref(op, (x, xt)[src], a, kd))
        try:
            check(got, want, _tol(op, dtype, x.size), zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"{op}(axis={a}, keepdims={kd}, {'transposed' if src else ''}): "
                                 f"{e}") from None


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_long_and_empty(dtype, rng):
    """Rows longer than a block (10007 elements), prime lengths, size-1 and empty axes
    (sum/prod/any/all of nothing is the identity)."""
    long_ = _reduction_data(rng, "sum", dtype, (10007,))
    odd = _reduction_data(rng, "sum", dtype, (3, 1031))
    one = _reduction_data(rng, "sum", dtype, (4, 1))
    empty = np.zeros((3, 0, 2), dtype)
    ops = [op for op in ("sum", "prod", "any", "all", "max", "mean")
           if supported_result(REDUCTIONS[op], dtype)]

    def kern(a, b, c, e):
        out = [tj.sum(a), tj.max(a), tj.argmax(a), tj.sum(b, axis=1), tj.min(b, axis=1),
               tj.argmin(b, axis=1), tj.sum(c, axis=1), tj.max(c, axis=1), tj.argmax(c, axis=1)]
        out += [tj.sum(e, axis=1), tj.prod(e, axis=1), tj.any(e, axis=1), tj.all(e, axis=(0, 1)),
                tj.sum(e)]
        return tuple(out)
    got = _run_all(tj.kernel(kern), [long_, odd, one, empty])
    want = [np.sum(long_), np.max(long_), np.argmax(long_), np.sum(odd, axis=1), np.min(odd, axis=1),
            np.argmin(odd, axis=1), np.sum(one, axis=1), np.max(one, axis=1), np.argmax(one, axis=1),
            np.sum(empty, axis=1), np.prod(empty, axis=1), np.any(empty, axis=1),
            np.all(empty, axis=(0, 1)), np.sum(empty)]
    for k, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        tol = 1e-5 if w.dtype == np.float32 else 1e-12 if w.dtype == np.float64 else 0
        try:
            check(g, w, tol, zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"case {k}: {e}") from None


@pytest.mark.parametrize("dtype", FLOATS)
def test_reduction_special_values(dtype, rng):
    """NaN propagates through max/min/sum; inf sums; argmax/argmin of NaN is its first index."""
    sp = specials(dtype)
    sp = sp[np.abs(sp) != np.finfo(dtype).max]                 # keep sums from overflowing
    rows = np.stack([rng.permutation(sp) for _ in range(6)])
    rows[0, :] = rng.permutation(np.where(np.isnan(sp), 1.0, sp))
    rows[1, :] = 0.0
    rows[1, 3] = -0.0
    k = tj.kernel(lambda x: (tj.max(x, 1), tj.min(x, 1), tj.sum(x, 1), tj.argmax(x, 1),
                             tj.argmin(x, 1), tj.any(x, 1), tj.all(x, 1), tj.mean(x, 1)))
    want = [np.max(rows, 1), np.min(rows, 1), np.sum(rows, 1), np.argmax(rows, 1),
            np.argmin(rows, 1), np.any(rows, 1), np.all(rows, 1), ref(np.mean, rows, 1)]
    for name, g, w in zip("max min sum argmax argmin any all mean".split(), k(rows), want):
        try:
            check(g, w, 1e-6 if name in ("sum", "mean") else 0, zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


def test_numpy_reduction_spellings(rng):
    """np.sum/np.max/... and ndarray-style methods on traced values trace the same ops."""
    x = rng.standard_normal((6, 11)).astype(np.float32)
    k = tj.kernel(lambda x: (np.sum(x, axis=0), np.max(x, axis=1, keepdims=True), np.mean(x),
                             np.argmax(x, axis=1), x.min(axis=0), x.prod(axis=1),
                             np.add.reduce(x, axis=1), np.maximum.reduce(x, axis=0)))
    want = [np.sum(x, axis=0), np.max(x, axis=1, keepdims=True), np.mean(x), np.argmax(x, axis=1),
            x.min(axis=0), x.prod(axis=1), np.add.reduce(x, axis=1), np.maximum.reduce(x, axis=0)]
    for g, w in zip(k(x), want):
        check(g, np.asarray(w), 1e-5, 1e-5, zero_sign=False)      # float32 sums cancel


# -- views -------------------------------------------------------------------------------------
VIEWS = [
    ("reshape", lambda x: x.reshape(6, 20)), ("reshape -1", lambda x: x.reshape(-1, 4)),
    ("reshape tuple", lambda x: np.reshape(x, (2, 2, 30))), ("flatten", lambda x: x.reshape(-1)),
    ("T", lambda x: x.T), ("transpose axes", lambda x: x.transpose(1, 2, 0)),
    ("np.transpose", lambda x: np.transpose(x, (2, 0, 1))), ("swapaxes", lambda x: x.swapaxes(0, 2)),
    ("np.swapaxes neg", lambda x: np.swapaxes(x, -1, -2)),
    ("broadcast_to", lambda x: np.broadcast_to(x[:, :1, :], (4, 6, 5)) * 1),
    ("broadcast_to new axis", lambda x: tj.broadcast_to(x[0, 0], (3, 5))),
    ("expand_dims", lambda x: np.expand_dims(x, 1)), ("expand_dims neg", lambda x: tj.expand_dims(x, -1)),
    ("squeeze", lambda x: np.squeeze(x[:, :1, :])), ("squeeze axis", lambda x: x[:1].squeeze(0)),
    ("slice", lambda x: x[1:3]), ("slice step", lambda x: x[:, 1:6:2]), ("neg step", lambda x: x[::-1]),
    ("neg step 3", lambda x: x[:, ::-3, 4:0:-2]), ("neg bounds", lambda x: x[-3:-1, -5:]),
    ("int index", lambda x: x[2]), ("neg int index", lambda x: x[-1, :, -2]),
    ("ellipsis", lambda x: x[..., 1]), ("None", lambda x: x[None, :, 0, None]),
    ("empty slice", lambda x: x[3:1]), ("T of slice", lambda x: x[::2, 1:4].T),
    ("reshape of T (copy)", lambda x: x.T.reshape(-1)), ("reshape of slice", lambda x: x[:, ::2].reshape(4, -1)),
    ("slice of reshape", lambda x: x.reshape(20, 6)[::3, ::-1]),
    ("op then views", lambda x: (x + x)[::-2].swapaxes(0, 1)[1:]),
    ("views then op", lambda x: x[:, ::2].T + x[::-1, ::2].T),
    ("broadcast with view", lambda x: x[:, 0:1, :] * x[0]),
]


@pytest.mark.parametrize("dtype,layout", [("float32", "contiguous"), ("int64", "contiguous"),
                                          ("bool", "contiguous"), ("float32", "transposed")])
def test_views(dtype, layout, rng):
    """Views and their combinations, as outputs and feeding ops, on contiguous and
    non-contiguous inputs."""
    x = values(rng, dtype, 120).reshape(4, 6, 5)
    if layout == "transposed":
        x = values(rng, dtype, 120).reshape(5, 6, 4).transpose(2, 1, 0)
    ok = []
    for name, f in VIEWS:
        try:
            ok.append((name, f, np.asarray(ref(f, x))))
        except TypeError:       # + of bools is fine; nothing else should fail
            pass
    outs = _run_all(tj.kernel(lambda x: tuple(f(x) for _, f, _ in ok)), [x])
    for (name, _, want), got in zip(ok, outs):
        try:
            check(got, want)
        except AssertionError as e:
            raise AssertionError(f"view {name!r}: {e}") from None
        assert got.base is None or not np.shares_memory(got, x), f"{name}: output aliases the input"


def test_broadcast_of_row_values(rng):
    """Row-level values (a column, a reduction) stored into every element they broadcast to."""
    x = rng.standard_normal((5, 7)).astype(np.float32)
    k = tj.kernel(lambda x: (np.broadcast_to(x[:, :1], x.shape) + 1,
                             np.broadcast_to(x.sum(axis=1, keepdims=True), x.shape) * 2,
                             np.broadcast_to(x[0, 0], (3, 4)) + 0))
    a, b, c = k(x)
    check(a, np.broadcast_to(x[:, :1], x.shape) + 1)
    check(b, np.broadcast_to(x.sum(axis=1, keepdims=True), x.shape) * 2, 1e-5, atol=1e-5)
    check(c, np.broadcast_to(x[0, 0], (3, 4)) + 0)


# -- matmul ----------------------------------------------------------------------------------
def _mm_operands(rng, dtype):
    def m(*shape):
        d = np.dtype(dtype)
        if d.kind == "i":
            return draw(rng, shape, d)                 # wraps the same way in any order
        return rng.uniform(-1, 1, shape).astype(d)
    return [
        ("1-D @ 2-D", m(7), m(7, 5)), ("2-D @ 1-D", m(5, 7), m(7)), ("1-D @ 1-D", m(9), m(9)),
        ("1x1", m(1, 1), m(1, 1)), ("3x5x7", m(3, 5), m(5, 7)), ("129x257x65", m(129, 257), m(257, 65)),
        ("k=1", m(6, 1), m(1, 9)), ("k=0", m(3, 0), m(0, 4)), ("m=0", m(0, 3), m(3, 4)),
        ("batched", m(2, 3, 4), m(2, 4, 5)), ("batch broadcast", m(3, 1, 4, 5), m(2, 5, 6)),
        ("2-D @ batched", m(4, 5), m(3, 5, 2)), ("batched @ 1-D", m(2, 3, 4), m(4)),
        ("a.T", m(17, 11).T, m(17, 13)), ("b.T", m(11, 17), m(13, 17).T),
        ("both T, batched", m(2, 6, 5).transpose(0, 2, 1), m(2, 7, 6).transpose(0, 2, 1)),
        ("strided", m(8, 20)[:, ::2], m(30, 9)[::-3]),
    ]


def _mm_tol(dtype, k):
    if np.dtype(dtype).kind != "f":
        return 0.0, 0.0
    e = eps(dtype)
    return 8 * e, 4 * max(k, 1) * e        # operands in [-1, 1]: |error| <= k * eps


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_matmul(dtype, rng):
    """1-D, 2-D, batched with broadcasting, odd sizes, transposed and strided operands."""
    cases = _mm_operands(rng, dtype)
    outs = _run_all(tj.kernel(lambda *xs: tuple(xs[i] @ xs[i + 1] for i in range(0, len(xs), 2))),
                    [x for _, a, b in cases for x in (a, b)])
    for (name, a, b), got in zip(cases, outs):
        rtol, atol = _mm_tol(dtype, a.shape[-1])
        try:
            check(got, np.matmul(a, b), rtol, atol, zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"matmul {name} {a.shape} @ {b.shape}: {e}") from None


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_matmul_epilogue(dtype, rng):
    """Fused epilogues: bias + relu, residual add, scaling and a cast; np.matmul, np.dot, @."""
    cases = _mm_operands(rng, dtype)
    x, w = cases[5][1], cases[5][2]                    # 129x257 @ 257x65
    b = values(rng, dtype, 65)
    r = values(rng, dtype, 129 * 65).reshape(129, 65)
    fns = [lambda x, w, b, r: tj.relu(x @ w + b),
           lambda x, w, b, r: np.matmul(x, w) + r,
           lambda x, w, b, r: np.maximum(np.dot(x, w) * 2, b).astype(np.float64),
           lambda x, w, b, r: (x @ w - r) * (x @ w > 0)]
    k = tj.kernel(lambda x, w, b, r: tuple(f(x, w, b, r) for f in fns))
    rtol, atol = _mm_tol(dtype, 257)
    for n, (f, got) in enumerate(zip(fns, k(x, w, b, r))):
        want = ref(f, x, w, b, r)
        try:
            check(got, want, rtol, 4 * atol, zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"epilogue {n}: {e}") from None


def test_matmul_mixed_dtypes(rng):
    a = rng.integers(-5, 5, (6, 7)).astype(np.int32)
    b = rng.standard_normal((7, 3)).astype(np.float32)
    got = tj.kernel(lambda a, b: a @ b)(a, b)
    check(got, a @ b, 1e-12, 1e-12)


# -- numpy spellings -----------------------------------------------------------------------------
UFUNCS_1 = [np.negative, np.absolute, np.exp, np.exp2, np.log, np.log2, np.log1p, np.expm1, np.sqrt,
            np.sin, np.cos, np.tan, np.tanh, np.floor, np.ceil, np.rint, np.sign, np.logical_not,
            np.square, np.reciprocal, np.positive]
UFUNCS_2 = [np.add, np.subtract, np.multiply, np.divide, np.true_divide, np.floor_divide,
            np.remainder, np.power, np.maximum, np.minimum, np.equal, np.not_equal, np.less,
            np.less_equal, np.greater, np.greater_equal, np.logical_and, np.logical_or,
            np.logical_xor]


@pytest.mark.parametrize("dtype", ["int32", "float64"])
def test_numpy_ufuncs_inside_kernels(dtype, rng):
    """Every numpy ufunc torsh-jit maps, called by its numpy name on traced values."""
    x = values(rng, dtype, 64)
    y = values(rng, dtype, 64)
    if np.dtype(dtype).kind == "i":
        y = np.abs(y % 5)                                  # power: no negative int exponents
    ok1 = [f for f in UFUNCS_1 if supported_result(f, dtype)]
    ok2 = [f for f in UFUNCS_2 if supported_result(f, dtype, dtype)]
    k = tj.kernel(lambda x, y: tuple(f(x) for f in ok1) + tuple(f(x, y) for f in ok2))
    for f, got in zip(ok1 + ok2, k(x, y)):
        want = ref(f, x) if f in ok1 else ref(f, x, y)
        try:
            check(got, want, 8 * eps(want.dtype), 8 * eps(want.dtype), zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"np.{f.__name__}: {e}") from None


def test_numpy_functions_inside_kernels(rng):
    """np.where/clip/dot/round/reshape/transpose/expand_dims/squeeze/argmax(keepdims) on
    traced values."""
    x = rng.standard_normal((6, 5)).astype(np.float32)
    c = rng.random((6, 5)) < 0.5
    fns = [lambda x, c: np.where(c, x, -x), lambda x, c: np.clip(x, -0.5, 0.75),
           lambda x, c: np.dot(x, x.T), lambda x, c: np.round(x),
           lambda x, c: np.reshape(x, (5, 6)), lambda x, c: np.transpose(x),
           lambda x, c: np.expand_dims(x, 0), lambda x, c: np.squeeze(x[:1]),
           lambda x, c: np.argmax(x, axis=1, keepdims=True), lambda x, c: x.argmin(axis=0, keepdims=True),
           lambda x, c: np.argmax(x, keepdims=True), lambda x, c: np.broadcast_to(x[0], (3, 6, 5)) + 0,
           lambda x, c: np.where(c, 1.0, 0), lambda x, c: np.where(c, x, 2.5),
           lambda x, c: np.amax(x, axis=0), lambda x, c: np.amin(x), lambda x, c: np.all(c, axis=1),
           lambda x, c: np.any(c), lambda x, c: np.mean(x, axis=(0, 1), keepdims=True)]
    k = tj.kernel(lambda x, c: tuple(f(x, c) for f in fns))
    for n, (f, got) in enumerate(zip(fns, k(x, c))):
        try:
            check(got, np.asarray(f(x, c)), 1e-5, 1e-5, zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"function case {n}: {e}") from None


def test_bool_matmul(rng):
    """numpy's bool matmul is 'any of the ands'."""
    a = rng.random((9, 13)) < 0.15
    b = rng.random((13, 7)) < 0.15
    check(tj.kernel(lambda a, b: a @ b)(a, b), a @ b)


# -- known limitations (documented; strict xfail turns into a failure once fixed) ---------------
@pytest.mark.xfail(strict=True, reason="float->int casts of NaN/inf/out-of-range values saturate "
                                       "(llvm.fptosi.sat); numpy gives INT_MIN")
@pytest.mark.parametrize("dtype", INTS)
def test_limitation_float_to_int_out_of_range(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30], np.float64)
    with np.errstate(invalid="ignore"):
        check(tj.kernel(lambda x: x.astype(dtype))(x), x.astype(dtype))


def test_int_pow_negative_exponent_raises_as_numpy():
    """It was a documented limitation (a kernel returned the truncated value); the call now
    checks exponent arguments, as numpy does (tests/ir/test_numpy_semantics.py has more)."""
    x = np.array([1, -1, 2, 3], np.int64)
    e = np.array([-1, -3, -1, -2], np.int64)
    with pytest.raises(ValueError):
        np.power(x, e)
    with pytest.raises(tj.DomainError):
        tj.kernel(lambda x, e: x ** e)(x, e)


def test_large_arrays_split_across_threads(rng):
    """Arrays above the one-thread grain: work ranges that start and end inside rows, rows
    spread over threads, matmul tiles over threads."""
    x = rng.standard_normal((517, 1031)).astype(np.float32)
    y = rng.standard_normal(1031).astype(np.float32)
    z = rng.standard_normal((1031, 517)).astype(np.float32).T            # non-contiguous
    fns = [lambda x, y, z: x * y + 1, lambda x, y, z: x[::-1, ::-3] - z[:, ::3] * 2,
           lambda x, y, z: (x > 0) & (z < 1), lambda x, y, z: x.argmax(axis=1),
           lambda x, y, z: np.max(x * y, axis=0), lambda x, y, z: x.reshape(11, 47, 1031).transpose(2, 0, 1) + 1,
           lambda x, y, z: np.maximum(x[:300, :500] @ z[:300, :500].T + 1, 0)]
    k = tj.kernel(lambda x, y, z: tuple(f(x, y, z) for f in fns))
    for n, (f, got) in enumerate(zip(fns, k(x, y, z))):
        want = f(x, y, z)
        t = 1e-4 if n == len(fns) - 1 else 0
        try:
            check(got, want, t, t, zero_sign=False)
        except AssertionError as e:
            raise AssertionError(f"case {n}: {e}") from None
