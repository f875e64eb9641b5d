"""vmath, the vector math library (torsh_jit/codegen/llvm/vmath.py, templates/llvm/vmath/).

Every function at float32 widths 16, 4, 1 and float64 widths 8, 2 is JIT-compiled for
this CPU and compared with numpy: float32 within 4 ulp of numpy's float64 result
rounded to float32, float64 within 4 ulp of a long double reference rounded to
double. Inputs are fresh random data each run (random bit patterns over every
exponent, dense grids where each function is interesting, special values); every
failure message carries the seed, and TORSH_JIT_TEST_SEED=<seed> replays it.

The small JIT here (a loop over whole vectors around each function, MCJIT, the new
pass manager at O3) is test scaffolding, not the project's LLVM backend.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import re

import numpy as np
import pytest

llvm = pytest.importorskip("llvmlite.binding")

from torsh_jit.codegen.llvm.vmath import (  # noqa: E402
    BINARY_FUNCS, VMATH_FUNCS, render_vmath, vmath_name)
from torsh_jit.errors import DTypeError, TorshJitError, UnsupportedOpError  # noqa: E402

FUNCS = sorted(VMATH_FUNCS)
CONFIGS = [("float32", 16), ("float32", 4), ("float32", 1), ("float64", 8), ("float64", 2)]
MAIN_WIDTH = {"float32": 16, "float64": 8}
# points per function: the main width gets the most
POINTS = {("float32", 16): 2_000_000, ("float32", 4): 250_000, ("float32", 1): 100_000,
          ("float64", 8): 1_000_000, ("float64", 2): 150_000}
MAX_ULP = 4

EXTENDED_LONGDOUBLE = np.finfo(np.longdouble).nmant >= 63


# ---------------------------------------------------------------- JIT scaffolding

def _wrapper_ir(func: str, dtype: str, width: int) -> str:
    """void run_NAME(T* in0[, T* in1], T* out, i64 nvec): out[i] = NAME(in[i]) per vector."""
    scalar = "float" if dtype == "float32" else "double"
    vec = f"<{width} x {scalar}>"
    align = 4 if dtype == "float32" else 8
    nargs = 2 if func in BINARY_FUNCS else 1
    name = vmath_name(func, dtype, width)
    params = ", ".join(f"ptr %in{i}" for i in range(nargs))
    loads = "".join(
        f"  %p{i} = getelementptr {vec}, ptr %in{i}, i64 %i\n"
        f"  %x{i} = load {vec}, ptr %p{i}, align {align}\n" for i in range(nargs))
    args = ", ".join(f"{vec} %x{i}" for i in range(nargs))
    return f"""
define void @run_{name}({params}, ptr %out, i64 %n) {{
entry:
  %empty = icmp eq i64 %n, 0
  br i1 %empty, label %exit, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %inext, %loop ]
{loads}  %y = call {vec} @{name}({args})
  %po = getelementptr {vec}, ptr %out, i64 %i
  store {vec} %y, ptr %po, align {align}
  %inext = add i64 %i, 1
  %more = icmp ult i64 %inext, %n
  br i1 %more, label %loop, label %exit
exit:
  ret void
}}
"""


def _target_machine():
    # a fresh one per engine: MCJIT takes ownership of the target machine it is given
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=3)


def _optimised_module(items):
    src = render_vmath(items) + "".join(_wrapper_ir(*it) for it in items)
    mod = llvm.parse_assembly(src)
    mod.verify()
    tm = _target_machine()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
    pb.getModulePassManager().run(mod, pb)
    return mod, tm


class Jit:
    """All (func, dtype, width) wrappers in one module, compiled once."""

    def __init__(self, items):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.mod, tm = _optimised_module(items)
        self.engine = llvm.create_mcjit_compiler(self.mod, tm)
        self.engine.finalize_object()
        self.fns = {}
        for func, dtype, width in items:
            nargs = 2 if func in BINARY_FUNCS else 1
            addr = self.engine.get_function_address("run_" + vmath_name(func, dtype, width))
            proto = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (nargs + 1), ctypes.c_int64)
            self.fns[(func, dtype, width)] = proto(addr)

    def __call__(self, func, dtype, width, *arrays):
        n = arrays[0].size
        nvec = -(-n // width)
        padded = []
        for a in arrays:
            p = np.zeros(nvec * width, dtype)
            p[:n] = a
            padded.append(p)
        out = np.empty(nvec * width, dtype)
        self.fns[(func, dtype, width)](*[p.ctypes.data for p in padded], out.ctypes.data, nvec)
        return out[:n]


@pytest.fixture(scope="module")
def jit():
    return Jit([(f, d, w) for f in FUNCS for d, w in CONFIGS])


@pytest.fixture
def seeded_rng():
    seed = int(os.environ.get("TORSH_JIT_TEST_SEED", np.random.SeedSequence().entropy))
    return seed, np.random.default_rng(seed)


# ---------------------------------------------------------------- ulp distance

def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units of the last place, by the integer order of the bit patterns
    (+0 and -0 are one apart). Two nans are equal, a nan and a number infinitely far."""
    ut = np.uint32 if a.dtype == np.float32 else np.uint64
    sign = ut(1) << ut(8 * a.dtype.itemsize - 1)

    def key(v):
        u = v.view(ut)
        return np.where(u & sign, ~u, u | sign)

    ka, kb = key(a), key(b)
    d = np.where(ka > kb, ka - kb, kb - ka).astype(np.float64)
    na, nb = np.isnan(a), np.isnan(b)
    d[na & nb] = 0.0
    d[na ^ nb] = np.inf
    return d


# ---------------------------------------------------------------- references

_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
try:
    _erfl = _libm.erfl
    _erfl.restype, _erfl.argtypes = ctypes.c_longdouble, [ctypes.c_longdouble]
except AttributeError:  # pragma: no cover - non-glibc
    _erfl = None


def _erf_ref(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.longdouble:
        if _erfl is None:
            pytest.skip("no erfl in this libm for a float64 erf reference")
        return np.frompyfunc(lambda v: _erfl(float(v)), 1, 1)(x).astype(np.float64)
    return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)


REFERENCE = {
    "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "log1p": np.log1p,
    "expm1": np.expm1, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "erf": _erf_ref, "pow": np.power,
}


def reference(func, dtype, *args):
    with np.errstate(all="ignore"):
        if dtype == "float32":
            return REFERENCE[func](*[a.astype(np.float64) for a in args]).astype(np.float32)
        return REFERENCE[func](*[a.astype(np.longdouble) for a in args]).astype(np.float64)


# ---------------------------------------------------------------- inputs

def _specials(dtype):
    fi = np.finfo(dtype)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0,
         1e-3, -1e-3, 1e5, -1e5, 1e10, -1e10, 3.4e38, -3.4e38,
         float(fi.tiny), -float(fi.tiny), float(fi.smallest_subnormal),
         -float(fi.smallest_subnormal), float(fi.tiny) / 3, float(fi.max), -float(fi.max),
         math.pi / 2, math.pi, -math.pi / 2, 100.0, -100.0, 90.0, -90.0]
    if dtype == "float64":
        v += [1e22, 1e300, -1e300, 6381956970095103 * 2.0 ** 797, 710.0, -746.0, 1e15]
    with np.errstate(over="ignore"):
        return np.array(v).astype(dtype)


def _random_bits(rng, dtype, n):
    ut = np.uint32 if dtype == "float32" else np.uint64
    return rng.integers(0, np.iinfo(ut).max, n, dtype=ut, endpoint=True).view(dtype)


# where each function is interesting: (lo, hi) uniform ranges, by dtype
_GRIDS = {
    "exp": {"float32": [(-104, 89), (-1, 1), (-90, -80)], "float64": [(-746, 710), (-1, 1), (-740, -700)]},
    "exp2": {"float32": [(-151, 129), (-1, 1), (-150, -120)], "float64": [(-1076, 1025), (-1, 1), (-1075, -1020)]},
    "expm1": {"float32": [(-30, 89), (-1, 1), (-1e-3, 1e-3)], "float64": [(-40, 710), (-1, 1), (-1e-3, 1e-3)]},
    "log": {"float32": [(0, 10), (0.9, 1.1), (0.999, 1.001)], "float64": [(0, 10), (0.9, 1.1), (0.999, 1.001)]},
    "log2": {"float32": [(0, 10), (0.9, 1.1), (0.999, 1.001)], "float64": [(0, 10), (0.9, 1.1), (0.999, 1.001)]},
    "log1p": {"float32": [(-1, 10), (-1e-3, 1e-3), (-1, -0.99)], "float64": [(-1, 10), (-1e-3, 1e-3), (-1, -0.99)]},
    "sin": {"float32": [(-10, 10), (-1e5, 1e5), (-3e38, 3e38)], "float64": [(-10, 10), (-1e9, 1e9), (-1e300, 1e300)]},
    "cos": {"float32": [(-10, 10), (-1e5, 1e5), (-3e38, 3e38)], "float64": [(-10, 10), (-1e9, 1e9), (-1e300, 1e300)]},
    "tan": {"float32": [(-10, 10), (-1e5, 1e5), (-3e38, 3e38)], "float64": [(-10, 10), (-1e9, 1e9), (-1e300, 1e300)]},
    "tanh": {"float32": [(-10, 10), (-1, 1), (-1e-2, 1e-2)], "float64": [(-23, 23), (-1, 1), (-1e-2, 1e-2)]},
    "sigmoid": {"float32": [(-110, 110), (-10, 10), (-104, -85)], "float64": [(-760, 760), (-10, 10), (-745, -700)]},
    "erf": {"float32": [(-5, 5), (-1, 1), (-1e-2, 1e-2)], "float64": [(-7, 7), (-1, 1), (-1e-2, 1e-2)]},
}


def unary_inputs(func, dtype, n, rng):
    parts = [_specials(dtype), _random_bits(rng, dtype, n // 4)]
    for lo, hi in _GRIDS[func][dtype]:
        parts.append(rng.uniform(lo, hi, n // 4))
    # magnitudes spread over every exponent, both signs
    wide = 2.0 ** rng.uniform(-60, 60, n // 8) * rng.choice([-1.0, 1.0], n // 8)
    parts.append(wide)
    if func in ("sin", "cos", "tan"):
        # next to multiples of pi/2, where the reduction cancels most
        k = rng.integers(1, 2 ** 20 if dtype == "float32" else 2 ** 40, n // 8)
        parts.append(k * (math.pi / 2))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.concatenate([np.asarray(p, dtype=np.float64).astype(dtype) for p in parts])


def pow_inputs(dtype, n, rng):
    limit = 126 if dtype == "float32" else 1020
    xs = [rng.uniform(0, 4, n // 5), rng.uniform(-4, 4, n // 5), rng.uniform(0.99, 1.01, n // 5),
          2.0 ** rng.uniform(-limit, limit, n // 5)]
    ys = [rng.uniform(-40, 40, n // 5), np.round(rng.uniform(-40, 40, n // 5)),
          rng.uniform(-3e3, 3e3, n // 5), rng.uniform(-1.2, 1.2, n // 5)]
    # results at the edges of the range: overflow, denormals
    x = rng.uniform(0.1, 10, n // 5)
    edge = 1.1 * limit
    ys.append(rng.uniform(-edge, edge, n // 5) / np.log2(x))
    xs.append(x)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    # random bit patterns in both, and every pair of special values
    sp = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 0.5, -0.5, 2.0, -2.0,
                   3.0, -3.0, 2.5, -2.5, 1e10, -1e10, 1e-30, 1e30])
    sx, sy = np.meshgrid(sp, sp)
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.concatenate([x, _random_bits(rng, dtype, n // 5).astype(np.float64)])
        y = np.concatenate([y, _random_bits(rng, dtype, n // 5).astype(np.float64)])
        x = np.concatenate([x, sx.ravel()]).astype(dtype)
        y = np.concatenate([y, sy.ravel()]).astype(dtype)
    return x, y


# ---------------------------------------------------------------- accuracy

def _describe(args, out, ref, idx):
    rows = []
    for i in idx:
        xs = ", ".join(repr(a[i]) for a in args)
        rows.append(f"f({xs}) = {out[i]!r}, reference {ref[i]!r}")
    return "\n  ".join(rows)


@pytest.mark.parametrize("dtype,width", CONFIGS, ids=[f"{d}x{w}" for d, w in CONFIGS])
@pytest.mark.parametrize("func", FUNCS)
def test_accuracy(jit, seeded_rng, func, dtype, width):
    if dtype == "float64" and not EXTENDED_LONGDOUBLE:
        pytest.skip("np.longdouble is not extended precision here: no float64 reference")
    seed, rng = seeded_rng
    n = POINTS[(dtype, width)]
    if func == "erf":
        n //= 4   # the reference is a Python-level loop
    args = pow_inputs(dtype, n, rng) if func in BINARY_FUNCS else (unary_inputs(func, dtype, n, rng),)
    out = jit(func, dtype, width, *args)
    ref = reference(func, dtype, *args)
    d = ulp_distance(out, ref)
    worst = np.argsort(d)[-3:][::-1]
    assert d.max() <= MAX_ULP, (
        f"{func} {dtype}x{width}: max {d.max()} ulp (limit {MAX_ULP}), "
        f"{int((d > MAX_ULP).sum())} of {d.size} points over; seed {seed}\n  "
        + _describe(args, out, ref, worst))
    # signed zeros: where the reference is a zero, the sign must match too
    zero = ref == 0
    bad = np.flatnonzero(zero & (np.signbit(ref) != np.signbit(out)))
    assert bad.size == 0, (
        f"{func} {dtype}x{width}: wrong sign of zero; seed {seed}\n  "
        + _describe(args, out, ref, bad[:3]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values(jit, dtype):
    """The cases numpy defines exactly, spelled out."""
    w = MAIN_WIDTH[dtype]
    inf, nan = np.inf, np.nan

    def f(func, *xs):
        return jit(func, dtype, w, *[np.array(x, dtype) for x in xs])

    def same(a, b):
        a, b = np.asarray(a, dtype), np.asarray(b, dtype)
        return bool(np.all((a == b) & (np.signbit(a) == np.signbit(b)) | (np.isnan(a) & np.isnan(b))))

    cases = [
        ("exp", [-inf, inf, nan, 0.0, -0.0], [0.0, inf, nan, 1.0, 1.0]),
        ("exp2", [-inf, inf, nan, 10.0, -3.0], [0.0, inf, nan, 1024.0, 0.125]),
        ("expm1", [-inf, inf, nan, -0.0, 0.0], [-1.0, inf, nan, -0.0, 0.0]),
        ("log", [0.0, -0.0, -1.0, inf, -inf, nan, 1.0], [-inf, -inf, nan, inf, nan, nan, 0.0]),
        ("log2", [0.0, -0.0, -1.0, inf, nan, 1.0, 1024.0], [-inf, -inf, nan, inf, nan, 0.0, 10.0]),
        ("log1p", [-1.0, -2.0, inf, nan, -0.0, 0.0], [-inf, nan, inf, nan, -0.0, 0.0]),
        ("sin", [-0.0, 0.0, inf, -inf, nan], [-0.0, 0.0, nan, nan, nan]),
        ("cos", [-0.0, 0.0, inf, -inf, nan], [1.0, 1.0, nan, nan, nan]),
        ("tan", [-0.0, 0.0, inf, -inf, nan], [-0.0, 0.0, nan, nan, nan]),
        ("tanh", [-0.0, 0.0, inf, -inf, nan, 50.0], [-0.0, 0.0, 1.0, -1.0, nan, 1.0]),
        ("sigmoid", [-inf, inf, nan, 0.0, -0.0], [0.0, 1.0, nan, 0.5, 0.5]),
        ("erf", [-0.0, 0.0, inf, -inf, nan, 10.0], [-0.0, 0.0, 1.0, -1.0, nan, 1.0]),
    ]
    for func, xs, want in cases:
        got = f(func, xs)
        assert same(got, want), f"{func} {dtype}: {xs} -> {got}, want {want}"

    pow_cases = [  # (x, y, want): C99 / numpy pow
        (nan, 0.0, 1.0), (nan, -0.0, 1.0), (1.0, nan, 1.0), (-1.0, inf, 1.0), (-1.0, -inf, 1.0),
        (-8.0, 1 / 3, nan), (-2.0, 3.0, -8.0), (-2.0, 2.0, 4.0), (-2.0, -1.0, -0.5),
        (0.0, -1.0, inf), (-0.0, -1.0, -inf), (-0.0, -2.0, inf), (-0.0, 3.0, -0.0),
        (0.0, 3.0, 0.0), (-0.0, 0.5, 0.0), (0.5, inf, 0.0), (0.5, -inf, inf), (2.0, inf, inf),
        (2.0, -inf, 0.0), (-inf, 3.0, -inf), (-inf, -3.0, -0.0), (-inf, 2.0, inf),
        (-inf, 0.5, inf), (inf, -1.0, 0.0), (nan, 1.0, nan), (2.0, nan, nan), (10.0, 3.0, 1000.0),
    ]
    x, y, want = (np.array(c) for c in zip(*pow_cases))
    got = f("pow", x, y)
    for i in range(len(pow_cases)):
        assert same(got[i], want[i]), f"pow {dtype}: pow({x[i]}, {y[i]}) = {got[i]}, want {want[i]}"


def test_trig_huge_arguments(jit):
    """Large arguments need the full-precision reduction: compare with long double."""
    x32 = np.array([1e5, 1e10, 3.4e38, -3.4e38, 1.0e30, 2.0 ** 100, 8.8e37, 1.7e38], np.float32)
    x64 = np.array([1e5, 1e10, 1e22, 1e300, 1.7e308, 2.0 ** 1000, 6381956970095103 * 2.0 ** 797,
                    -1e200], np.float64)
    for func in ("sin", "cos", "tan"):
        got = jit(func, "float32", 16, x32)
        assert ulp_distance(got, reference(func, "float32", x32)).max() <= MAX_ULP, (func, got)
        if EXTENDED_LONGDOUBLE:
            got = jit(func, "float64", 8, x64)
            assert ulp_distance(got, reference(func, "float64", x64)).max() <= MAX_ULP, (func, got)


# ---------------------------------------------------------------- rendering

def test_names():
    assert vmath_name("exp", "float32", 16) == "tj_vm_exp_f32x16"
    assert vmath_name("pow", "float64", 2) == "tj_vm_pow_f64x2"
    with pytest.raises(UnsupportedOpError):
        vmath_name("gamma", "float32", 4)
    with pytest.raises(DTypeError):
        render_vmath([("exp", "float16", 4)])
    with pytest.raises(TorshJitError):
        render_vmath([("exp", "float32", 3)])


def test_fragment_defines_each_function_once():
    text = render_vmath([("tanh", "float32", 8), ("sigmoid", "float32", 8),
                         ("exp", "float32", 8), ("pow", "float32", 8), ("sin", "float64", 4),
                         ("cos", "float64", 4), ("exp", "float32", 8)])
    defined = re.findall(r"^define internal .*? @(\w+)\(", text, re.M)
    assert len(defined) == len(set(defined))
    # what was asked for, and what it needs (pow float32 runs on float64 log2/exp2)
    for name in ["tj_vm_tanh_f32x8", "tj_vm_sigmoid_f32x8", "tj_vm_exp_f32x8", "tj_vm_pow_f32x8",
                 "tj_vm_log2_f64x8", "tj_vm_exp2_f64x8", "tj_vm_sin_f64x4", "tj_vm_cos_f64x4"]:
        assert name in defined
    assert len(re.findall(r"^@tj_vm__two_over_pi = ", text, re.M)) == 1
    assert "target triple" not in text and "target datalayout" not in text
    for line in re.findall(r"^define .*$", text, re.M):
        assert re.match(r"define internal (<\d+ x (float|double)>) @\w+\(\1 %x(, \1 %y)?\) noinline \{$",
                        line), line
    # rendering is cached on the set of requests, in any order
    again = render_vmath(reversed([("tanh", "float32", 8), ("sigmoid", "float32", 8),
                                   ("exp", "float32", 8), ("pow", "float32", 8),
                                   ("sin", "float64", 4), ("cos", "float64", 4)]))
    assert again is text


def test_every_width_parses():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    items = [(f, d, w) for f in FUNCS for d in ("float32", "float64") for w in (1, 2, 4, 8, 16)]
    mod = llvm.parse_assembly(render_vmath(items))
    mod.verify()


def test_no_libm_calls_remain(jit):
    """The optimised code is pure vector code: the only calls are to our own vector
    functions (one copy each per module); a scalarised llvm.exp would call expf."""
    asm = _target_machine().emit_assembly(jit.mod)
    calls = re.findall(r"^\s*(?:call|callq|jmp)\s+(\S+)", asm, re.M)
    external = [c for c in calls if not c.startswith(".L") and not c.startswith("tj_vm_")
                and not c.startswith("*%")]   # indirect calls: the JIT code model's own functions
    named = set(re.findall(r"\b(?:expf|sinf|cosf|tanhf|logf|erff|exp|sin|cos|log|tanh|erf|pow|powf|fmaf|fma)@?\w*\b",
                           " ".join(re.findall(r"^\s*(?:call|callq|jmp)\s+.*$", asm, re.M))))
    assert not named, sorted(named)
    assert external == [], sorted(set(external))[:10]
