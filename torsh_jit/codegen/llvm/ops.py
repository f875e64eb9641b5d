"""The LLVM spelling of the op table: one snippet per (op, dtype family).

A snippet is LLVM IR text over vectors. Placeholders: {a} {b} {c} operands,
{T} the vector type of the compute dtype, {S} its scalar type, {B} the vector
of i1 of the same width, {W} lanes, {t} a fresh name prefix; the snippet's last
line defines %{t}. {MIN}/{MAX} are the integer type's limits. Calls to
@{vm:NAME} are vector math functions (vmath.py), bound to the width.
"""
from __future__ import annotations

from .vmath import BINARY_FUNCS, VMATH_FUNCS

# Families: f = float, i = signed int, b = bool (i1 in registers).
# Elementwise float arithmetic carries no fast-math flags: results are numpy's to the bit
# (no FMA contraction), and these kernels are memory-bound, so rounding twice costs nothing.
_FLOOR_DIVMOD_INT = """%{t}.z = icmp eq {T} {b}, zeroinitializer
%{t}.am = icmp eq {T} {a}, splat ({S} {MIN})
%{t}.bm = icmp eq {T} {b}, splat ({S} -1)
%{t}.ov = and {B} %{t}.am, %{t}.bm
%{t}.bad = or {B} %{t}.z, %{t}.ov
%{t}.d = select {B} %{t}.bad, {T} splat ({S} 1), {T} {b}
%{t}.q = sdiv {T} {a}, %{t}.d
%{t}.r = srem {T} {a}, %{t}.d
%{t}.rnz = icmp ne {T} %{t}.r, zeroinitializer
%{t}.x = xor {T} %{t}.r, %{t}.d
%{t}.sd = icmp slt {T} %{t}.x, zeroinitializer
%{t}.adj = and {B} %{t}.rnz, %{t}.sd
"""

# numpy's npy_divmod for floats: the remainder takes the divisor's sign and the
# quotient is rounded so that q*b + r == a as closely as possible.
_FLOAT_DIVMOD = """%{t}.m0 = frem {T} {a}, {b}
%{t}.dv0 = fsub {T} {a}, %{t}.m0
%{t}.dv1 = fdiv {T} %{t}.dv0, {b}
%{t}.mnz = fcmp une {T} %{t}.m0, zeroinitializer
%{t}.bneg = fcmp olt {T} {b}, zeroinitializer
%{t}.mneg = fcmp olt {T} %{t}.m0, zeroinitializer
%{t}.sdiff = xor {B} %{t}.bneg, %{t}.mneg
%{t}.fix = and {B} %{t}.mnz, %{t}.sdiff
%{t}.m1 = fadd {T} %{t}.m0, {b}
%{t}.m2 = select {B} %{t}.fix, {T} %{t}.m1, {T} %{t}.m0
%{t}.z0 = call {T} @llvm.copysign.{VT}({T} zeroinitializer, {T} {b})
%{t}.mod = select {B} %{t}.mnz, {T} %{t}.m2, {T} %{t}.z0
%{t}.dv2 = fsub {T} %{t}.dv1, splat ({S} 1.0)
%{t}.div = select {B} %{t}.fix, {T} %{t}.dv2, {T} %{t}.dv1
%{t}.fl0 = call {T} @llvm.floor.{VT}({T} %{t}.div)
%{t}.fr = fsub {T} %{t}.div, %{t}.fl0
%{t}.up = fcmp ogt {T} %{t}.fr, splat ({S} 0.5)
%{t}.fl1 = fadd {T} %{t}.fl0, splat ({S} 1.0)
%{t}.fl2 = select {B} %{t}.up, {T} %{t}.fl1, {T} %{t}.fl0
%{t}.q0 = fdiv {T} {a}, {b}
%{t}.qz = call {T} @llvm.copysign.{VT}({T} zeroinitializer, {T} %{t}.q0)
%{t}.dnz = fcmp une {T} %{t}.div, zeroinitializer
%{t}.fd = select {B} %{t}.dnz, {T} %{t}.fl2, {T} %{t}.qz
%{t}.b0 = fcmp oeq {T} {b}, zeroinitializer
"""

OPS: dict[str, dict[str, str]] = {
    "neg": {"f": "%{t} = fneg {T} {a}", "i": "%{t} = sub {T} zeroinitializer, {a}"},
    "abs": {"f": "%{t} = call {T} @llvm.fabs.{VT}({T} {a})",
            "i": "%{t} = call {T} @llvm.abs.{VT}({T} {a}, i1 false)",
            "b": "%{t} = or {T} {a}, zeroinitializer"},
    "floor": {"f": "%{t} = call {T} @llvm.floor.{VT}({T} {a})", "i": "%{t} = or {T} {a}, zeroinitializer",
              "b": "%{t} = or {T} {a}, zeroinitializer"},
    "ceil": {"f": "%{t} = call {T} @llvm.ceil.{VT}({T} {a})", "i": "%{t} = or {T} {a}, zeroinitializer",
             "b": "%{t} = or {T} {a}, zeroinitializer"},
    "round": {"f": "%{t} = call {T} @llvm.roundeven.{VT}({T} {a})"},
    "sign": {
        "f": """%{t}.p = fcmp ogt {T} {a}, zeroinitializer
%{t}.n = fcmp olt {T} {a}, zeroinitializer
%{t}.z = fcmp oeq {T} {a}, zeroinitializer
%{t}.s0 = select {B} %{t}.z, {T} zeroinitializer, {T} {a}
%{t}.s1 = select {B} %{t}.n, {T} splat ({S} -1.0), {T} %{t}.s0
%{t} = select {B} %{t}.p, {T} splat ({S} 1.0), {T} %{t}.s1""",
        "i": """%{t}.p = icmp sgt {T} {a}, zeroinitializer
%{t}.n = icmp slt {T} {a}, zeroinitializer
%{t}.s1 = select {B} %{t}.n, {T} splat ({S} -1), {T} zeroinitializer
%{t} = select {B} %{t}.p, {T} splat ({S} 1), {T} %{t}.s1"""},
    "sqrt": {"f": "%{t} = call {T} @llvm.sqrt.{VT}({T} {a})"},
    "rsqrt": {"f": "%{t}.s = call {T} @llvm.sqrt.{VT}({T} {a})\n%{t} = fdiv {T} splat ({S} 1.0), %{t}.s"},
    "relu": {"f": "%{t} = call {T} @llvm.maximum.{VT}({T} {a}, {T} zeroinitializer)",
             "i": "%{t} = call {T} @llvm.smax.{VT}({T} {a}, {T} zeroinitializer)",
             "b": "%{t} = or {T} {a}, zeroinitializer"},
    "logical_not": {"b": "%{t} = xor {T} {a}, splat (i1 true)"},
    "add": {"f": "%{t} = fadd {T} {a}, {b}", "i": "%{t} = add {T} {a}, {b}",
            "b": "%{t} = or {T} {a}, {b}"},
    "sub": {"f": "%{t} = fsub {T} {a}, {b}", "i": "%{t} = sub {T} {a}, {b}"},
    "mul": {"f": "%{t} = fmul {T} {a}, {b}", "i": "%{t} = mul {T} {a}, {b}",
            "b": "%{t} = and {T} {a}, {b}"},
    "truediv": {"f": "%{t} = fdiv {T} {a}, {b}"},
    "floordiv": {
        "i": _FLOOR_DIVMOD_INT + """%{t}.aj = sext {B} %{t}.adj to {T}
%{t}.q1 = add {T} %{t}.q, %{t}.aj
%{t} = select {B} %{t}.z, {T} zeroinitializer, {T} %{t}.q1""",
        "f": _FLOAT_DIVMOD + "%{t} = select {B} %{t}.b0, {T} %{t}.q0, {T} %{t}.fd",
        "b": "%{t} = and {T} {a}, {b}"},
    "mod": {
        "i": _FLOOR_DIVMOD_INT + """%{t}.r1 = add {T} %{t}.r, %{t}.d
%{t}.r2 = select {B} %{t}.adj, {T} %{t}.r1, {T} %{t}.r
%{t} = select {B} %{t}.z, {T} zeroinitializer, {T} %{t}.r2""",
        "f": _FLOAT_DIVMOD + "%{t} = select {B} %{t}.b0, {T} %{t}.m0, {T} %{t}.mod"},
    "pow": {"f": "%{t} = call {T} @{vm:pow}({T} {a}, {T} {b})",
            "i": "%{t} = call {T} @tj_ipow_{S}x{W}({T} {a}, {T} {b})"},
    "maximum": {"f": "%{t} = call {T} @llvm.maximum.{VT}({T} {a}, {T} {b})",
                "i": "%{t} = call {T} @llvm.smax.{VT}({T} {a}, {T} {b})",
                "b": "%{t} = or {T} {a}, {b}"},
    "minimum": {"f": "%{t} = call {T} @llvm.minimum.{VT}({T} {a}, {T} {b})",
                "i": "%{t} = call {T} @llvm.smin.{VT}({T} {a}, {T} {b})",
                "b": "%{t} = and {T} {a}, {b}"},
    "eq": {"f": "%{t} = fcmp oeq {T} {a}, {b}", "i": "%{t} = icmp eq {T} {a}, {b}",
           "b": "%{t} = icmp eq {T} {a}, {b}"},
    "ne": {"f": "%{t} = fcmp une {T} {a}, {b}", "i": "%{t} = icmp ne {T} {a}, {b}",
           "b": "%{t} = icmp ne {T} {a}, {b}"},
    "lt": {"f": "%{t} = fcmp olt {T} {a}, {b}", "i": "%{t} = icmp slt {T} {a}, {b}",
           "b": "%{t} = icmp ult {T} {a}, {b}"},
    "le": {"f": "%{t} = fcmp ole {T} {a}, {b}", "i": "%{t} = icmp sle {T} {a}, {b}",
           "b": "%{t} = icmp ule {T} {a}, {b}"},
    "gt": {"f": "%{t} = fcmp ogt {T} {a}, {b}", "i": "%{t} = icmp sgt {T} {a}, {b}",
           "b": "%{t} = icmp ugt {T} {a}, {b}"},
    "ge": {"f": "%{t} = fcmp oge {T} {a}, {b}", "i": "%{t} = icmp sge {T} {a}, {b}",
           "b": "%{t} = icmp uge {T} {a}, {b}"},
    "logical_and": {"b": "%{t} = and {T} {a}, {b}"},
    "logical_or": {"b": "%{t} = or {T} {a}, {b}"},
    "logical_xor": {"b": "%{t} = xor {T} {a}, {b}"},
    "where": {"f": "%{t} = select {B} {a}, {T} {b}, {T} {c}", "i": "%{t} = select {B} {a}, {T} {b}, {T} {c}",
              "b": "%{t} = select {B} {a}, {T} {b}, {T} {c}"},
}
for _f in sorted(VMATH_FUNCS - BINARY_FUNCS):
    OPS[_f] = {"f": "%{t} = call {T} @{vm:" + _f + "}({T} {a})"}


# casts: (from family, to family) -> snippet; {T}/{S} are the target type, {F} the source
CASTS = {
    ("f", "f"): "%{t} = {fext} {F} {a} to {T}",
    ("i", "i"): "%{t} = {iext} {F} {a} to {T}",
    ("i", "f"): "%{t} = sitofp {F} {a} to {T}",
    ("f", "i"): "%{t} = call {T} @llvm.fptosi.sat.{VT}.{VF}({F} {a})",
    ("b", "i"): "%{t} = zext {F} {a} to {T}",
    ("b", "f"): "%{t} = uitofp {F} {a} to {T}",
    ("i", "b"): "%{t} = icmp ne {F} {a}, zeroinitializer",
    ("f", "b"): "%{t} = fcmp une {F} {a}, zeroinitializer",
}

# reductions: identity, combine snippet (acc {a}, value {b}), horizontal reduce intrinsic
REDUCTIONS = {
    "sum": {"f": ("0.0", "%{t} = fadd reassoc contract {T} {a}, {b}", "fadd"),
            "i": ("0", "%{t} = add {T} {a}, {b}", "add")},
    "prod": {"f": ("1.0", "%{t} = fmul reassoc {T} {a}, {b}", "fmul"),
             "i": ("1", "%{t} = mul {T} {a}, {b}", "mul")},
    "max": {"f": ("-inf", "%{t} = call {T} @llvm.maximum.{VT}({T} {a}, {T} {b})", "fmaximum"),
            "i": ("MIN", "%{t} = call {T} @llvm.smax.{VT}({T} {a}, {T} {b})", "smax"),
            "b": ("false", "%{t} = or {T} {a}, {b}", "or")},
    "min": {"f": ("inf", "%{t} = call {T} @llvm.minimum.{VT}({T} {a}, {T} {b})", "fminimum"),
            "i": ("MAX", "%{t} = call {T} @llvm.smin.{VT}({T} {a}, {T} {b})", "smin"),
            "b": ("true", "%{t} = and {T} {a}, {b}", "and")},
    "any": {"b": ("false", "%{t} = or {T} {a}, {b}", "or")},
    "all": {"b": ("true", "%{t} = and {T} {a}, {b}", "and")},
}

# matmul's multiply-accumulate: acc {c} += {a} * {b}. fmuladd: one fused instruction where
# the target has one (FMA3, NEON/SVE fmla, RVV vfmacc), a multiply and an add where it has
# none (SSE4.2, wasm SIMD128), instead of llvm.fma's libm call per lane there.
MULADD = {"f": "%{t} = call {T} @llvm.fmuladd.{VT}({T} {a}, {T} {b}, {T} {c})",
          "i": "%{t}.m = mul {T} {a}, {b}\n%{t} = add {T} %{t}.m, {c}"}

# Exact-range float products (prod): the accumulator is a double mantissa in [0.5, 1) and
# an i64 exponent, so no partial product over- or underflows where the true product does
# not (reordered lanes could otherwise give inf * 0 = NaN for a finite product). {a}: a
# <W x double> to renormalise; %{t} its mantissa, %{t}.de the exponent taken out. Zeros,
# subnormals, infinities and NaNs are left as they are (exponent 0): they are the product.
PROD_RENORM = """%{t}.b = bitcast {T} {a} to <{W} x i64>
%{t}.f = lshr <{W} x i64> %{t}.b, splat (i64 52)
%{t}.e = and <{W} x i64> %{t}.f, splat (i64 2047)
%{t}.z = icmp eq <{W} x i64> %{t}.e, zeroinitializer
%{t}.x = icmp eq <{W} x i64> %{t}.e, splat (i64 2047)
%{t}.s = or <{W} x i1> %{t}.z, %{t}.x
%{t}.m = and <{W} x i64> %{t}.b, splat (i64 -9218868437227405313)
%{t}.n = or <{W} x i64> %{t}.m, splat (i64 4602678819172646912)
%{t}.nb = select <{W} x i1> %{t}.s, <{W} x i64> %{t}.b, <{W} x i64> %{t}.n
%{t} = bitcast <{W} x i64> %{t}.nb to {T}
%{t}.d = sub <{W} x i64> %{t}.e, splat (i64 1022)
%{t}.de = select <{W} x i1> %{t}.s, <{W} x i64> zeroinitializer, <{W} x i64> %{t}.d"""

# A double factor of an exact-range product as a normal double (a subnormal is scaled by
# 2^64, exactly) and the exponent that takes back, %{t}.k: a float64 factor is split into
# mantissa and exponent before it multiplies the accumulator, so the product of two
# mantissas in [0.5, 1) can neither overflow nor become subnormal.
PROD_UNSUB = """%{t}.b = bitcast {T} {a} to <{W} x i64>
%{t}.f = and <{W} x i64> %{t}.b, splat (i64 9218868437227405312)
%{t}.z = icmp eq <{W} x i64> %{t}.f, zeroinitializer
%{t}.s = fmul {T} {a}, splat (double 0x43F0000000000000)
%{t} = select <{W} x i1> %{t}.z, {T} %{t}.s, {T} {a}
%{t}.k = select <{W} x i1> %{t}.z, <{W} x i64> splat (i64 -64), <{W} x i64> zeroinitializer"""

# {a} * 2^{b} ({a} <W x double>, {b} <W x i64>), rounded once: the exponent, clamped to
# +-3000 (past which every double over- or underflows anyway), is applied as three powers
# of two of its sign, each a normal double, so only the last multiply can round.
PROD_LDEXP = "\n".join(
    ["%{t}.c1 = call <{W} x i64> @llvm.smax.v{W}i64(<{W} x i64> {b}, <{W} x i64> splat (i64 -3000))",
     "%{t}.c = call <{W} x i64> @llvm.smin.v{W}i64(<{W} x i64> %{t}.c1, <{W} x i64> splat (i64 3000))",
     "%{t}.e1 = sdiv <{W} x i64> %{t}.c, splat (i64 3)",
     "%{t}.r1 = sub <{W} x i64> %{t}.c, %{t}.e1",
     "%{t}.e2 = sdiv <{W} x i64> %{t}.r1, splat (i64 2)",
     "%{t}.e3 = sub <{W} x i64> %{t}.r1, %{t}.e2"]
    + [line for k in (1, 2, 3) for line in (
        f"%{{t}}.q{k} = add <{{W}} x i64> %{{t}}.e{k}, splat (i64 1023)",
        f"%{{t}}.s{k} = shl <{{W}} x i64> %{{t}}.q{k}, splat (i64 52)",
        f"%{{t}}.p{k} = bitcast <{{W}} x i64> %{{t}}.s{k} to {{T}}")]
    + ["%{t}.m1 = fmul {T} {a}, %{t}.p1",
       "%{t}.m2 = fmul {T} %{t}.m1, %{t}.p2",
       "%{t} = fmul {T} %{t}.m2, %{t}.p3"])
