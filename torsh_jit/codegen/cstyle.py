"""One renderer for the C-like GPU languages (CUDA C now; MSL and WGSL share it).

A language is a subclass of `CStyleLanguage` that declares data: its register and memory
types, op spellings (`code_for_op`, merged as `{**CStyleLanguage.code_for_op, ...}`),
casts, reductions, literals, qualifiers, barrier, shuffles and thread-index builtins.
`CEmitter` walks a Group's exprs and writes statements in that language; the language's
Jinja skeletons (templates/<language>/) lay out threads, loops, tiles and barriers around
the pieces the emitter hands them.

The unit of work of a thread is a *group* of V consecutive elements along the innermost
(collapsed) domain axis, inside one row. Arrays of V values (`l3[v]`) hold loads, values
are computed per element in a loop over v, and stores write V values at once (one wide
access where the layout and the pointer's alignment allow, else V scalar accesses).

16-bit floats are held in registers as float and rounded after every operation, which is
numpy's arithmetic for float16 (and ml_dtypes' for bfloat16): each op in float32, then one
rounding to the 16-bit type.
"""
from __future__ import annotations

import math
import struct

from .. import errors as E
from ..fuse import Group, Expr
from ..ir.dtypes import ITEMSIZE, family
from ..ir.ops import COMPARISONS, LOGICAL, REDUCE_OPS as _REDUCE_OPS, operand_dtypes
from ..schedule.layout import plan_axes, inner_mode, AxisPlan   # axis collapsing is the same for every language

ARG_REDUCTIONS = ("argmax", "argmin")
INT_LIMITS = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}

# x OP c with c the other way round: c OP x is x SWAPPED[OP] c
_SWAPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}
# an integer x against a number c by value: x < c is x < ceil(c), x <= c is x <= floor(c)...
_INT_BOUND = {"lt": math.ceil, "ge": math.ceil, "le": math.floor, "gt": math.floor}
# x OP k for every x of an integer range: (k above the range, k below it)
_OUTSIDE = {"lt": (True, False), "le": (True, False), "gt": (False, True), "ge": (False, True),
            "eq": (False, False), "ne": (True, True)}



class CStyleLanguage:
    """Data that spells IR in a C-like language. Subclasses override attributes only.

    Spellings are format strings over: {a} {b} {c} operands (already of the compute type),
    {T} the compute dtype's register type, {U} its unsigned twin, {F} the suffix of its
    math functions ('f' for float), {MIN} {MAX} the integer limits."""
    name = "c"
    file_suffix = ".c"
    kernel_prefix = ""                 # before a kernel's return type
    global_ptr = "{T}*"                # a pointer to device memory
    const_ptr = "const {T}*"
    shared = ""                        # declares block-shared memory
    barrier = ""
    thread_index = {"local": "", "group": "", "local_size": "", "groups": ""}
    shuffle_xor = ""                   # {x} {o}: the value of lane ^ o
    shuffle_bool = ""                  # the same for a bool (shuffled as an int)
    types = {"bool": "bool", "int32": "int", "int64": "long long", "float32": "float",
             "float64": "double", "float16": "float", "bfloat16": "float"}
    # dtypes in `types` only for weak Python constants, spelled in a narrower register: a
    # comparison numpy makes in one of them is made by value instead (CEmitter.compare_by_value)
    narrowed: frozenset = frozenset()
    mem_types = {"bool": "unsigned char", "int32": "int", "int64": "long long",
                 "float32": "float", "float64": "double", "float16": "unsigned short",
                 "bfloat16": "unsigned short"}
    unsigned = {"int32": "unsigned int", "int64": "unsigned long long"}
    math_suffix = {"float32": "f", "float64": "", "float16": "f", "bfloat16": "f"}
    load_conv = {"bool": "({x} != 0)"}                 # memory -> register
    store_conv = {"bool": "(unsigned char)({x})"}      # register -> memory
    round_to: dict[str, str] = {}                      # after each op giving this dtype
    literal_suffix = {"float32": "f", "float64": "", "float16": "f", "bfloat16": "f",
                      "int32": "", "int64": "LL"}
    special_floats: dict = {}                          # (dtype, 'inf' | '-inf' | 'nan') -> text
    # kernel parameters: {T} the memory type, {name}; param_attr after each, {i} its position
    restrict = "__restrict__"
    scalar_param = "const {T} {name}"                  # a scalar argument, by value
    param_attr = ""
    arg_index = "long long"                            # argmax/argmin positions in registers
    float_sum_dtype = "float64"                        # float sums accumulate in this dtype

    # statements: {T} a type, {n} a name, {x} an expression, {V} a length
    let = "const {T} {n} = {x};"                       # an immutable local
    var = "[[maybe_unused]] {T} {n} = {x};"            # a mutable local
    array = "{T} {n}[{V}];"                            # a local array of V values
    loop = "#pragma unroll\nfor (int {i} = {lo}; {i} < {hi}; ++{i})"   # a short counted loop
    unroll_loops = False                               # write short counted loops out in full
    convert = "(({T})({x}))"                           # an explicit conversion to {T}
    # memory: {buf} a buffer number, {ro} a row offset, {i} an index from it, {k} the first
    # index of a group of V, {t} a fresh name, {mt} the memory type, {src} an array of V values
    elem = "(b{buf} + {ro})[{i}]"
    wide_load = "{mt} {t}[{V}];\ntj_ldv<{mt}, {V}>((b{buf} + {ro}) + {k}, {t});"
    wide_store = "tj_stv<{mt}, {V}>((b{buf} + {ro}) + {k}, {src});"
    # a pointer is aligned to {align} bytes ('' where buffers are always aligned)
    aligned = "((reinterpret_cast<unsigned long long>(b{buf}) & {mask}) == 0)"

    code_for_op: dict[str, dict[str, str]] = {
        "neg": {"f": "(-{a})", "i": "(({T})(({U})0 - ({U}){a}))"},
        "abs": {"f": "fabs{F}({a})", "i": "({a} < 0 ? ({T})(({U})0 - ({U}){a}) : {a})", "b": "{a}"},
        "floor": {"f": "floor{F}({a})", "i": "{a}", "b": "{a}"},
        "ceil": {"f": "ceil{F}({a})", "i": "{a}", "b": "{a}"},
        "round": {"f": "rint{F}({a})"},
        "sign": {"f": "({a} > 0 ? ({T})1 : {a} < 0 ? ({T})-1 : {a} == 0 ? ({T})0 : {a})",
                 "i": "(({T})(({a} > 0) - ({a} < 0)))"},
        "sqrt": {"f": "sqrt{F}({a})"},
        "rsqrt": {"f": "(({T})1 / sqrt{F}({a}))"},
        "relu": {"f": "(({a} >= 0 || {a} != {a}) ? {a} : ({T})0)", "i": "({a} > 0 ? {a} : ({T})0)",
                 "b": "{a}"},
        "logical_not": {"b": "(!{a})"},
        "add": {"f": "({a} + {b})", "i": "(({T})(({U}){a} + ({U}){b}))", "b": "({a} || {b})"},
        "sub": {"f": "({a} - {b})", "i": "(({T})(({U}){a} - ({U}){b}))"},
        "mul": {"f": "({a} * {b})", "i": "(({T})(({U}){a} * ({U}){b}))", "b": "({a} && {b})"},
        "truediv": {"f": "({a} / {b})"},
        "floordiv": {"f": "tj_floordiv({a}, {b})", "i": "tj_ifloordiv({a}, {b})", "b": "({a} && {b})"},
        "mod": {"f": "tj_fmod_py({a}, {b})", "i": "tj_imod({a}, {b})"},
        "pow": {"f": "pow{F}({a}, {b})", "i": "tj_ipow({a}, {b})"},
        "maximum": {"f": "tj_fmax({a}, {b})", "i": "({a} >= {b} ? {a} : {b})", "b": "({a} || {b})"},
        "minimum": {"f": "tj_fmin({a}, {b})", "i": "({a} <= {b} ? {a} : {b})", "b": "({a} && {b})"},
        "eq": {k: "({a} == {b})" for k in "fib"},
        "ne": {k: "({a} != {b})" for k in "fib"},
        "lt": {k: "({a} < {b})" for k in "fib"},
        "le": {k: "({a} <= {b})" for k in "fib"},
        "gt": {k: "({a} > {b})" for k in "fib"},
        "ge": {k: "({a} >= {b})" for k in "fib"},
        "logical_and": {"b": "({a} && {b})"},
        "logical_or": {"b": "({a} || {b})"},
        "logical_xor": {"b": "({a} != {b})"},
        "where": {k: "({a} ? {b} : {c})" for k in "fib"},
        "sigmoid": {"f": "(({T})1 / (({T})1 + exp{F}(-{a})))"},
        **{fn: {"f": fn + "{F}({a})"} for fn in ("exp", "exp2", "log", "log2", "log1p", "expm1",
                                                  "sin", "cos", "tan", "tanh", "erf")},
    }

    # (source family, destination family) -> spelling; {T} the destination register type.
    casts = {("f", "f"): "(({T})({a}))", ("i", "i"): "(({T})({a}))", ("i", "f"): "(({T})({a}))",
             ("f", "i"): "(({T})({a}))", ("b", "i"): "(({T})({a}))", ("b", "f"): "(({T})({a}))",
             ("i", "b"): "({a} != 0)", ("f", "b"): "({a} != 0)"}
    # exact (source dtype, destination dtype) spellings that beat the family rule
    cast_overrides: dict[tuple[str, str], str] = {}

    # reductions: op -> family -> (identity, combine {a} {b})
    reductions = {
        "sum": {"f": ("-0.0", "({a} + {b})"), "i": ("0", "(({T})(({U}){a} + ({U}){b}))")},
        "prod": {"f": ("1.0", "({a} * {b})"), "i": ("1", "(({T})(({U}){a} * ({U}){b}))")},
        "max": {"f": ("-inf", "tj_fmax({a}, {b})"), "i": ("MIN", "({a} >= {b} ? {a} : {b})"),
                "b": ("false", "({a} || {b})")},
        "min": {"f": ("inf", "tj_fmin({a}, {b})"), "i": ("MAX", "({a} <= {b} ? {a} : {b})"),
                "b": ("true", "({a} && {b})")},
        "any": {"b": ("false", "({a} || {b})")},
        "all": {"b": ("true", "({a} && {b})")},
    }
    # float products (prod) accumulate a mantissa in [0.5, 1) and an integer exponent
    # (ExactProdAccumulator): prelude helpers that take a value apart by its bits (0, inf,
    # NaN: as they are, exponent 0) and put the pair together rounding once ({a} a mantissa
    # or value, {b} an exponent)
    exact_prod = {"frac": "tj_pm_frac({a})", "expo": "tj_pm_expo({a})", "ldexp": "tj_pm_ldexp({a}, {b})"}
    prod_mantissa = {"float16": "float32", "bfloat16": "float32"}      # else the dtype itself
    # the exponent's dtype, by the mantissa's: an int32 holds the exponents of 2^31 / 150
    # float32 factors at the ends of the range in one partial; doubles take an int64, which
    # costs little beside them
    prod_exponent = {"float64": "int64"}                               # else int32
    # argmax/argmin: does (b, bi) replace (a, ai)? numpy: first occurrence, NaN first
    arg_take = {"argmax": "tj_arg_take_max({a}, {ai}, {b}, {bi})",
                "argmin": "tj_arg_take_min({a}, {ai}, {b}, {bi})"}
    # matmul's multiply-accumulate {c} += {a} * {b}
    muladd = {"f": "fma{F}({a}, {b}, {c})", "i": "(({T})(({U}){c} + ({U}){a} * ({U}){b}))",
              "b": "({c} || ({a} && {b}))"}

    def shuffle(self, x: str, o: str, ctype: str) -> str:
        return (self.shuffle_bool if ctype == self.types["bool"] else self.shuffle_xor).format(x=x, o=o)

    # -- literals -----------------------------------------------------------------------
    def literal(self, value, dtype: str) -> str:
        f = family(dtype)
        if f == "b":
            return "true" if value else "false"
        if f == "i":
            lo, hi = INT_LIMITS[dtype]
            v = (int(value) - lo) % (hi - lo + 1) + lo     # wraps, as numpy's int casts do
            if v == lo:   # -2147483648 is a negated literal in C: spell it without overflow
                return self.convert.format(T=self.types[dtype],
                                           x=f"{v + 1}{self.literal_suffix[dtype]} - 1")
            return f"{v}{self.literal_suffix[dtype]}" if v >= 0 else \
                f"({v}{self.literal_suffix[dtype]})"
        v = float(value)
        v = self.round_value(v, dtype)
        if math.isnan(v) or math.isinf(v):
            key = "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
            return self.special_floats[(self.types[dtype], key)]
        text = v.hex() + self.literal_suffix[dtype]
        return f"({text})" if text.startswith("-") else text

    @staticmethod
    def round_value(v: float, dtype: str) -> float:
        """v as the dtype stores it (literals of a dtype are that dtype's values)."""
        import numpy as np
        if dtype == "float32":
            return struct.unpack("f", struct.pack("f", v))[0]
        if dtype == "float16":
            return float(np.float16(v))
        if dtype == "bfloat16":
            import ml_dtypes
            return float(np.asarray(v, dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float32))
        return v

    def holds(self, dtype: str) -> bool:
        """Values of dtype live in registers of their own width here."""
        return dtype in self.types and dtype not in self.narrowed

    def identity(self, ident: str, dtype: str) -> str:
        if ident in ("MIN", "MAX"):
            lo, hi = INT_LIMITS[dtype]
            return self.literal(lo if ident == "MIN" else hi, dtype)
        if ident in ("true", "false"):
            return self.literal(ident == "true", dtype)
        return self.literal(float(ident) if family(dtype) == "f" else int(float(ident)), dtype)

    # -- spelling helpers -------------------------------------------------------------------
    def fmt(self, text: str, dtype: str, **ops) -> str:
        lo, hi = INT_LIMITS.get(dtype, (0, 0))
        return text.format(T=self.types[dtype], U=self.unsigned.get(dtype, ""),
                           F=self.math_suffix.get(dtype, ""), MIN=lo, MAX=hi, **ops)

    def for_loop(self, i: str, lo, hi, body: str) -> str:
        if self.unroll_loops and isinstance(lo, int) and isinstance(hi, int) and hi - lo <= 8:
            # written out: a compiler that does not unroll would index a local array at run
            # time, which can put it in memory
            let = self.let.format(T=self.types["int32"], n=i, x="{}")
            return " ".join("{ " + let.format(n) + " " + body + " }" for n in range(lo, hi))
        return self.loop.format(i=i, lo=lo, hi=hi) + " { " + body + " }"

    def rounded(self, expr: str, dtype: str) -> str:
        r = self.round_to.get(dtype)
        return r.format(x=expr) if r else expr

    def cast(self, expr: str, src: str, dst: str) -> str:
        if src == dst:
            return expr
        if self.types[src] == self.types[dst] and family(src) == family(dst) == "f":
            # float16 <-> bfloat16 <-> float32 share the float register: round only
            return self.rounded(expr, dst) if ITEMSIZE[dst] < ITEMSIZE[src] or \
                self.round_to.get(dst) else expr
        text = self.cast_overrides.get((src, dst)) or self.casts[(family(src), family(dst))]
        return self.rounded(self.fmt(text, dst, a=expr), dst)


def batch_offset(acc, batch, nb, var: str, wide: str | None = "long long") -> str:
    """Element offset of operand `acc` for the linear batch index `var` (each term widened to
    `wide` first; None: no cast, where the index type is the offset type)."""
    terms = [str(acc.offset)] if acc.offset else []
    cur = var
    for d in range(nb - 1, -1, -1):
        coord = cur if d == 0 else f"({cur} % {batch[d]})"
        if acc.strides[d]:
            terms.append((f"({wide})" if wide else "") + f"{coord} * {acc.strides[d]}")
        cur = f"({cur} / {batch[d]})"
    return " + ".join(terms) or "0"


# ops that give one of their operands, zero, or its sign flipped: exact in the operands' type
_EXACT_OPS = frozenset({"neg", "abs", "relu", "maximum", "minimum", "where"})


class Ctx:
    """How an element context reads loads: `load(li)` gives the C expression of load li."""

    def __init__(self, load, seed=None):
        self.load = load
        self.seed = seed or {}


# -- accumulator kinds ----------------------------------------------------------------------------
class Accumulator:
    """How one reduction accumulates, in a shape every reduce skeleton takes: its registers
    (one value, or a pair), their identity, how an element enters an element slot, how two
    partials combine (slots, shuffled lanes, shared memory, other blocks' workspace), and the
    row's value. A register is named by its suffix: `a<sfx><i>` a thread's partial,
    `acc<sfx><i>[q]` its element slots. The skeletons move registers and never look inside.
    This kind: one register and the language's reduction table (sum, max, any, integer prod)."""

    def __init__(self, em: "CEmitter", i: int):
        self.em, self.L, self.i, self.e = em, em.L, i, em.g.exprs[i]

    def regs(self) -> list[tuple[str, str]]:
        """(register type, suffix) of a thread's partial."""
        return [(self.L.types[self.em.acc_dtype(self.i)], "")]

    def slot_types(self) -> list[str]:
        """Register types of the element slots (float32 short sums: narrower than a<i>)."""
        return [self.L.types[self.em.slot_dtype(self.i)]]

    def value_dtype(self) -> str:
        """The dtype an element is converted to before it enters a slot."""
        return self.em.slot_dtype(self.i)

    def identity(self, slot: bool = False) -> list[str]:
        return [self.em.identity_of(self.i, slot)]

    def widen(self, regs: list[str]) -> list[str]:
        """A slot's registers as a partial's."""
        return [self.L.cast(regs[0], self.em.slot_dtype(self.i), self.em.acc_dtype(self.i))]

    def step(self, dst: list[str], x: str, kidx: str) -> list[str]:
        """Statements: element x (of value_dtype), at inner index kidx, into slot dst."""
        return [f"{dst[0]} = {self.em.combine(self.i, dst[0], x, slot=True)};"]

    def merge(self, dst: list[str], src: list[str]) -> list[str]:
        """Statements: dst = dst combined with src (each src expression is read once)."""
        return [f"{dst[0]} = {self.em.combine(self.i, dst[0], src[0])};"]

    def finish(self, regs: list[str]) -> tuple[str, str]:
        """(register type, expression) of the row's value."""
        e = self.e
        return self.L.types[e.dtype], self.L.cast(regs[0], self.em.acc_dtype(self.i), e.dtype)


class ArgAccumulator(Accumulator):
    """argmax/argmin: the best value and its position (-1: none yet)."""

    def regs(self):
        return super().regs() + [(self.L.arg_index, "i")]

    def slot_types(self):
        return super().slot_types() + [self.L.arg_index]

    def identity(self, slot=False):
        return super().identity(slot) + ["-1"]

    def widen(self, regs):
        return list(regs)

    def _take(self, dst, b, bi) -> str:
        return self.L.fmt(self.L.arg_take[self.e.op], self.em.acc_dtype(self.i),
                          a=dst[0], ai=dst[1], b=b, bi=bi)

    def step(self, dst, x, kidx):
        t = self.em.fresh("x")
        k = self.L.convert.format(T=self.L.arg_index, x=kidx)
        return [self.L.let.format(T=self.L.types[self.value_dtype()], n=t, x=x),
                f"if ({self._take(dst, t, k)}) {{ {dst[0]} = {t}; {dst[1]} = {k}; }}"]

    def merge(self, dst, src):
        return [f"if ({src[1]} >= 0 && ({dst[1]} < 0 || {self._take(dst, src[0], src[1])})) "
                f"{{ {dst[0]} = {src[0]}; {dst[1]} = {src[1]}; }}"]

    def finish(self, regs):
        # an empty row has no argmax (numpy raises before); -1 never escapes here
        return self.L.arg_index, regs[1]


class ExactProdAccumulator(Accumulator):
    """A float product as a mantissa in [0.5, 1) and an integer exponent, renormalised after
    every multiply: threads, lanes and blocks multiply in another order than numpy, and a
    partial of the huge factors (inf) times one of the tiny factors (0) gave NaN where the
    whole product is finite. Each factor is taken apart first, so a multiply of two mantissas
    (in [0.25, 1)) never leaves the normal range, subnormal factors included; the row's value
    is rounded once (ldexp). 0, inf and NaN stay in the mantissa with exponent 0: they are
    the product, inf * 0 = NaN included."""

    def __init__(self, em, i):
        super().__init__(em, i)
        self.m = self.L.prod_mantissa.get(self.e.dtype, self.e.dtype)
        self.x = self.L.prod_exponent.get(self.m, "int32")

    def regs(self):
        return [(self.L.types[self.m], ""), (self.L.types[self.x], "e")]

    def slot_types(self):
        return [t for t, _ in self.regs()]

    def value_dtype(self):
        return self.m

    def identity(self, slot=False):
        return [self.L.literal(1.0, self.m), self.L.literal(0, self.x)]

    def widen(self, regs):
        return list(regs)

    def _spell(self, key, **ops) -> str:
        return self.L.fmt(self.L.exact_prod[key], self.m, **ops)

    def _times(self, dst, mant: str, exps: list[str]) -> list[str]:
        """dst *= mant 2^(sum of exps): the mantissas' product taken apart again."""
        L = self.L
        t = self.em.fresh("pm")
        mul = L.fmt(L.reductions["prod"]["f"][1], self.m, a=dst[0], b=mant)
        e = dst[1]
        for x in exps + [self._spell("expo", a=t)]:
            e = L.fmt(L.code_for_op["add"]["i"], self.x, a=e, b=x)
        return [L.let.format(T=L.types[self.m], n=t, x=mul),
                f"{dst[0]} = {self._spell('frac', a=t)};", f"{dst[1]} = {e};"]

    def step(self, dst, x, kidx):
        t = self.em.fresh("pf")
        return [self.L.let.format(T=self.L.types[self.m], n=t, x=x)] + \
            self._times(dst, self._spell("frac", a=t), [self._spell("expo", a=t)])

    def merge(self, dst, src):
        return self._times(dst, src[0], [src[1]])

    def finish(self, regs):
        val = self._spell("ldexp", a=regs[0], b=regs[1])
        return self.L.types[self.e.dtype], self.L.cast(val, self.m, self.e.dtype)


# reduction op, or (op, result family) -> accumulator kind (others: Accumulator)
ACCUMULATORS = {"argmax": ArgAccumulator, "argmin": ArgAccumulator,
                ("prod", "f"): ExactProdAccumulator}


class CEmitter:
    """Statements of one kernel body in a CStyleLanguage, for the templates to place.

    Names: `b<k>` buffer k (pointer, or a by-value scalar), `ro_<key>` an access's row offset,
    `lr<i>` a row-invariant load, `l<i>` an array of V loaded values, `r<e>` the row-level
    value of expr e (reduction results and what is computed from them), `s<i>` an array of V
    values to store, `acc<e>` / `a<e>` reduction accumulators."""

    def __init__(self, lang: CStyleLanguage, group: Group, *, V: int = 1, index: str = "int",
                 scalar_bufs=frozenset(), ax: AxisPlan | None = None, short_sums: bool = False):
        self.L = lang
        # short_sums: a thread adds few elements (the skeleton knows how many), so its float32
        # sums run in float32 and only the per-thread totals are combined in the wide type
        self.short_sums = short_sums
        self.g = group
        self.V = V
        self.I = index
        self.scalar_bufs = frozenset(scalar_bufs)
        self.ax = ax or plan_axes(group)
        self.n = 0
        self.row_memo: dict[int, str] = {}
        self.stored_rows: set[int] = set()
        self.red = [i for i, e in enumerate(group.exprs) if e.op in _REDUCE_OPS]
        self.passes = sorted({group.exprs[i].level for i in self.red})
        self.varies = self._varies()
        self.modes = {key: inner_mode(self.ax.inner, st) for key, st in self.ax.inner_strides.items()}
        self.vec_static = {key: self._vec_static(key) for key in self.modes}
        for e in group.exprs:
            if e.dtype not in lang.types:
                raise E.DTypeError(f"dtype {e.dtype} is not supported by the {lang.name} target")

    # -- bookkeeping ----------------------------------------------------------------------
    def fresh(self, stem="t") -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def _varies(self) -> list[bool]:
        out = []
        for e in self.g.exprs:
            if e.op == "load":
                out.append(self.modes_of_load(dict(e.attrs)["access"]) != "invariant")
            elif e.op == "matmul":
                out.append(True)
            elif e.op in _REDUCE_OPS or e.op == "const":
                out.append(False)
            else:
                out.append(any(out[a] for a in e.args))
        return out

    def modes_of_load(self, li: int) -> str:
        return inner_mode(self.ax.inner, self.ax.inner_strides[("l", li)])[0]

    def access(self, key):
        kind, i = key
        return self.g.loads[i] if kind == "l" else self.g.stores[i].access

    def _vec_static(self, key) -> bool:
        """Groups of V along the inner axis are V-aligned in this access, whatever the row."""
        if self.V == 1 or self.modes[key][0] != "contig":
            return False
        acc = self.access(key)
        if acc.offset % self.V or any(s % self.V for s in self.ax.outer_strides[key]):
            return False
        return self.ax.K % self.V == 0 or not self.ax.outer

    def vector_accesses(self) -> list:
        """Accesses read or written V at a time: (key, buffer, required pointer alignment)."""
        out = []
        for key, ok in sorted(self.vec_static.items()):
            if ok and self.access(key).buf not in self.scalar_bufs:
                acc = self.access(key)
                out.append((key, acc.buf, min(16, self.V * ITEMSIZE[acc.dtype])))
        return out

    def vec_ok_expr(self) -> str:
        """C condition: every vector access's pointer is aligned for its wide loads/stores."""
        terms = []
        for key, buf, align in self.vector_accesses():
            if self.L.aligned:
                terms.append(self.L.aligned.format(buf=buf, mask=align - 1))
        return " && ".join(sorted(set(terms))) or "true"

    def buffers(self) -> list[int]:
        bufs = {a.buf for a in self.g.loads} | {s.access.buf for s in self.g.stores}
        bufs |= {a.buf for a in self.g.mm}
        return sorted(bufs)

    def written(self) -> set[int]:
        return {s.access.buf for s in self.g.stores}

    def buffer_dtype(self, buf: int) -> str:
        for a in list(self.g.loads) + [s.access for s in self.g.stores] + list(self.g.mm):
            if a.buf == buf:
                return a.dtype
        raise E.InternalError(f"buffer {buf} is not used by this group")

    def params(self) -> list[str]:
        """The kernel's parameters: device pointers, and scalars by value."""
        out = []
        written = self.written()
        restrict = f" {self.L.restrict}" if self.L.restrict else ""
        for i, b in enumerate(self.buffers()):
            mt = self.L.mem_types[self.buffer_dtype(b)]
            if b in self.scalar_bufs:
                decl = self.L.scalar_param.format(T=mt, name=f"b{b}")
            elif b in written:
                decl = self.L.global_ptr.format(T=mt) + f"{restrict} b{b}"
            else:
                decl = self.L.const_ptr.format(T=mt) + f"{restrict} b{b}"
            out.append(decl + self.L.param_attr.format(i=i))
        return out

    # -- addressing -----------------------------------------------------------------------
    def row_offset(self, key, o: str) -> str:
        """The element offset of an access at the start of row `o` (C expression)."""
        acc = self.access(key)
        outer = self.ax.outer
        terms = [str(acc.offset)] if acc.offset else []
        cur = o
        for d in range(len(outer) - 1, -1, -1):
            st = self.ax.outer_strides[key][d]
            coord = cur if d == 0 else f"({cur} % {outer[d]})"
            if st:
                terms.append(f"{coord} * {st}" if st != 1 else coord)
            cur = f"({cur} / {outer[d]})"
        return self.L.convert.format(T=self.I, x=' + '.join(terms) if terms else "0")

    def inner_offset(self, key, k: str) -> str:
        """The element offset of inner index k (C expression) relative to the row."""
        mode = self.modes[key]
        if mode[0] == "invariant":
            return "0"
        if mode[0] == "contig":
            return k
        if mode[0] == "strided":
            return f"({k}) * {mode[1]}"
        inner, st = self.ax.inner, self.ax.inner_strides[key]
        terms, cur = [], f"({k})"
        for d in range(len(inner) - 1, -1, -1):
            coord = cur if d == 0 else f"({cur} % {inner[d]})"
            if st[d]:
                terms.append(f"{coord} * {st[d]}")
            cur = f"({cur} / {inner[d]})"
        return "(" + " + ".join(terms or ["0"]) + ")"

    def row_setup(self, o: str, tag: str = "", skip=()) -> str:
        """Row offsets of every access and the row-invariant loads, for row `o`; none for the
        access keys in `skip` (accesses the template addresses another way)."""
        lines = []
        keys = [("l", i) for i in range(len(self.g.loads))] + [("s", i) for i in range(len(self.g.stores))]
        for key in keys:
            acc = self.access(key)
            if acc.buf in self.scalar_bufs or key in skip:
                continue
            if key[0] == "l" and self.modes[key][0] == "invariant" and not self._load_used(key[1]):
                continue
            lines.append(self.L.let.format(T=self.I, n=f"ro_{key[0]}{key[1]}{tag}",
                                           x=self.row_offset(key, o)))
        for li, acc in enumerate(self.g.loads):
            if self.modes[("l", li)][0] == "invariant" and self._load_used(li):
                src = f"b{acc.buf}" if acc.buf in self.scalar_bufs else \
                    self.L.elem.format(buf=acc.buf, ro=f"ro_l{li}{tag}", i="0")
                conv = self.L.load_conv.get(acc.dtype, "{x}").format(x=src)
                lines.append(self.L.let.format(T=self.L.types[acc.dtype], n=f"lr{li}{tag}", x=conv))
        return "\n".join(lines)

    def _load_used(self, li: int) -> bool:
        return any(e.op == "load" and dict(e.attrs)["access"] == li for e in self.g.exprs)

    # -- loads and stores of one group of V elements ----------------------------------------
    def varying_loads(self, exprs=None) -> list[int]:
        """Loads that differ along the inner axis (read per element), of the given exprs' cone."""
        want = set(range(len(self.g.exprs))) if exprs is None else self._cone(exprs)
        out = []
        for i in sorted(want):
            e = self.g.exprs[i]
            if e.op == "load":
                li = dict(e.attrs)["access"]
                if self.modes_of_load(li) != "invariant" and li not in out:
                    out.append(li)
        return sorted(out)

    def _cone(self, roots) -> set[int]:
        """Exprs the roots depend on, not looking through reductions already known per row."""
        seen, stack = set(), list(roots)
        while stack:
            x = stack.pop()
            if x in seen:
                continue
            seen.add(x)
            e = self.g.exprs[x]
            if e.op in _REDUCE_OPS and x not in roots:
                continue
            stack.extend(e.args)
        return seen

    def load_group(self, li: int, k: str, dst: str, *, guard: str | None, vec: str,
                   decl: bool = True, tag: str = "") -> str:
        """Fill `dst[0..V)` (register values) with load li at inner indices k..k+V-1.

        guard: condition that all V are inside the row (None: always); vec: condition
        for the wide path (the pointer's alignment)."""
        acc = self.g.loads[li]
        key = ("l", li)
        V, L = self.V, self.L
        rt, mt = L.types[acc.dtype], L.mem_types[acc.dtype]
        conv = L.load_conv.get(acc.dtype, "{x}")
        out = [L.array.format(T=rt, n=dst, V=V)] if decl else []
        ro = f"ro_l{li}{tag}"
        kk = "(" + k + " + v)"
        read = conv.format(x=L.elem.format(buf=acc.buf, ro=ro, i=self.inner_offset(key, kk)))
        if guard is not None:
            body = f"{dst}[v] = {L.convert.format(T=rt, x='0')}; if ({kk} < {self.ax.K}) {{ {dst}[v] = {read}; }}"
        else:
            body = f"{dst}[v] = {read};"
        scalar = L.for_loop("v", 0, V, body)
        if self.vec_static[key]:
            t = self.fresh("m")
            wide = (L.wide_load.format(mt=mt, V=V, t=t, buf=acc.buf, ro=ro, k=k) + "\n"
                    + L.for_loop("v", 0, V, f"{dst}[v] = {conv.format(x=f'{t}[v]')};"))
            cond = vec if guard is None else f"({vec}) && ({guard})"
            out.append(f"if ({cond}) {{\n{_indent(wide)}\n}} else {{\n{_indent(scalar)}\n}}")
        else:
            out.append(scalar)
        return "\n".join(out)

    def store_group(self, si: int, k: str, src: str, *, guard: str | None, vec: str,
                    tag: str = "") -> str:
        """Write `src[0..V)` (memory values) to store si at inner indices k..k+V-1.
        A store whose place does not move along the inner axis is written once per row."""
        acc = self.g.stores[si].access
        key = ("s", si)
        L = self.L
        V, mt = self.V, L.mem_types[acc.dtype]
        ro = f"ro_s{si}{tag}"
        if self.modes[key][0] == "invariant":
            return f"if ({k} == 0) {{ {L.elem.format(buf=acc.buf, ro=ro, i='0')} = {src}[0]; }}"
        kk = "(" + k + " + v)"
        body = f"{L.elem.format(buf=acc.buf, ro=ro, i=self.inner_offset(key, kk))} = {src}[v];"
        scalar = L.for_loop("v", 0, V, f"if ({kk} < {self.ax.K}) {{ {body} }}" if guard is not None else body)
        if self.vec_static[key]:
            cond = vec if guard is None else f"({vec}) && ({guard})"
            wide = L.wide_store.format(mt=mt, V=V, buf=acc.buf, ro=ro, k=k, src=src)
            return f"if ({cond}) {{\n  {wide}\n}} else {{\n{_indent(scalar)}\n}}"
        return scalar

    # -- expressions ------------------------------------------------------------------------
    def value(self, lines: list, eid: int, ctx: Ctx, memo: dict) -> str:
        """The C expression of expr eid in an element context (statements go to lines)."""
        if eid in ctx.seed:
            return ctx.seed[eid]
        if eid in self.row_memo:
            return self.row_memo[eid]
        if eid in memo:
            return memo[eid]
        e = self.g.exprs[eid]
        if e.op == "const":
            return self.L.literal(dict(e.attrs)["value"], e.dtype)
        if e.op == "load":
            li = dict(e.attrs)["access"]
            return ctx.load(li)
        if e.op in _REDUCE_OPS:
            raise E.InternalError(f"reduction %{eid} used before its pass finished")
        if e.op == "cast":
            a = e.args[0]
            text = self.operand(self.value(lines, a, ctx, memo), a, e.dtype)
        else:
            text = self.apply(e, [self.value(lines, a, ctx, memo) for a in e.args])
        t = self.fresh()
        lines.append(self.L.let.format(T=self.L.types[e.dtype], n=t, x=text))
        memo[eid] = t
        return t

    def operand(self, v: str, a: int, dst: str) -> str:
        """Expr a (written v) converted to dst. A Python int meets a float as its value (a
        register of the int's own dtype may not hold it: 2**31 on a target without int64)."""
        x = self.g.exprs[a]
        if x.op == "const" and family(dst) == "f" and family(x.dtype) == "i":
            return self.L.literal(dict(x.attrs)["value"], dst)
        return self.L.cast(v, x.dtype, dst)

    def apply(self, e: Expr, vals: list[str]) -> str:
        cts, cdt = operand_dtypes(e.op, dict(e.attrs), e.dtype, len(vals))
        if e.op in COMPARISONS and not self.L.holds(cdt):
            return self.compare_by_value(e, vals, cdt)
        conv = [self.operand(v, a, ct) for v, a, ct in zip(vals, e.args, cts)]
        spell = self.L.code_for_op.get(e.op, {}).get(family(cdt))
        if spell is None:
            raise E.DTypeError(f"{e.op} is not supported for {cdt} on {self.L.name} targets")
        text = self.L.fmt(spell, cdt, **dict(zip("abc", conv)))
        if (e.op in COMPARISONS or e.op in LOGICAL) and e.dtype == "bool":
            return text
        if e.op in _EXACT_OPS and cdt == e.dtype:
            # the result is one of the operands (or 0, or a sign flip), already a value of the
            # 16-bit type: no second rounding
            return text
        return self.L.rounded(text, e.dtype)

    def compare(self, op: str, dtype: str, a: str, b: str) -> str:
        """a OP b, both already of dtype."""
        return self.L.fmt(self.L.code_for_op[op][family(dtype)], dtype, a=a, b=b)

    def compare_by_value(self, e: Expr, vals: list[str], ct: str) -> str:
        """A comparison numpy makes in a dtype this language lacks (float64, int64): a weak
        Python number against an int32 or bool array (x_int32 > 0.5, x == 2**31, b == 1).
        numpy compares such a number by value, so against a constant the comparison becomes
        one in the array's own dtype with an integer bound (x > 0.5 is x > 0; x < 2**31 is
        true everywhere; x == nan is false everywhere)."""
        args = [self.g.exprs[a] for a in e.args]
        consts = [i for i, x in enumerate(args) if x.op == "const"]
        if len(consts) == 2:      # not folded: numpy's own answer
            import numpy as np
            with np.errstate(all="ignore"):
                got = getattr(np, {"lt": "less", "le": "less_equal", "gt": "greater",
                                   "ge": "greater_equal", "eq": "equal", "ne": "not_equal"}[e.op])(
                    *(dict(x.attrs)["value"] for x in args))
            return self.L.literal(bool(got), "bool")
        if len(consts) == 1:
            j = consts[0]
            op = e.op if j == 1 else _SWAPPED[e.op]
            x, xv, c = args[1 - j], vals[1 - j], dict(args[j].attrs)["value"]
            if family(x.dtype) == "f":
                # a Python float argument, held in this float dtype: numbers meet it there
                return self.compare(op, x.dtype, xv, self.L.literal(c, x.dtype))
            lo, hi = (0, 1) if x.dtype == "bool" else INT_LIMITS[x.dtype]
            dt = "int32" if x.dtype == "bool" else x.dtype
            if isinstance(c, float) and math.isnan(c):
                return self.L.literal(op == "ne", "bool")
            if isinstance(c, float) and not math.isinf(c):
                if op in _INT_BOUND:
                    c = _INT_BOUND[op](c)
                elif c != math.floor(c):          # == a non-integer: never
                    return self.L.literal(op == "ne", "bool")
                else:
                    c = int(c)
            if not lo <= c <= hi:
                return self.L.literal(_OUTSIDE[op][c < lo], "bool")
            return self.compare(op, dt, self.L.cast(xv, x.dtype, dt), self.L.literal(int(c), dt))
        # a Python number passed as an argument: its value is known at run time only
        fam = family(ct)
        held = [x.dtype for x in args if family(x.dtype) == fam and self.L.holds(x.dtype)]
        if held and (fam == "i" or all(family(x.dtype) == "f" for x in args)):
            # ints: the argument arrives as an int32 (out-of-range values are refused on the way
            # in); floats: both sides are Python floats, which this target holds as float32
            dt = max(held, key=lambda d: ITEMSIZE[d])
            conv = [self.L.cast(v, x.dtype, dt) for v, x in zip(vals, args)]
            return self.compare(e.op, dt, *conv)
        kinds = " and ".join(sorted({x.dtype for x in args}))
        raise E.DTypeError(
            f"comparing {kinds} values needs {ct} (numpy compares a Python float with an "
            f"integer or bool array exactly, in {ct}), which {self.L.name} targets do not have",
            hint="write the number into the kernel as a constant (x > 0.5 is compared exactly), "
                 "or convert a side first: x.astype(np.float32) > s compares in float32")

    def compute_stores(self, ctx: Ctx, dsts: dict[int, str], v: str = "v") -> str:
        """Per element: every varying store's value, converted to memory, into dsts[si][v]."""
        lines: list[str] = []
        memo: dict = {}
        for si, s in enumerate(self.g.stores):
            if si in dsts:
                val = self.value(lines, s.expr, ctx, memo)
                acc = s.access
                val = self.L.cast(val, self.g.exprs[s.expr].dtype, acc.dtype)
                conv = self.L.store_conv.get(acc.dtype, "{x}").format(x=val)
                lines.append(f"{dsts[si]}[{v}] = {conv};")
        return "\n".join(lines)

    def varying_stores(self) -> list[int]:
        return [si for si in range(len(self.g.stores)) if self.store_varies(si)]

    def store_varies(self, si: int) -> bool:
        """Store si writes per element: its value varies along the inner axis, or its place does."""
        return self.varies[self.g.stores[si].expr] or self.modes[("s", si)][0] != "invariant"

    def store_arrays(self, tag: str = "") -> tuple[str, dict[int, str]]:
        """Declarations of the V-value arrays of the varying stores, and their names."""
        names = {si: f"s{si}{tag}" for si in self.varying_stores()}
        decl = "\n".join(self.L.array.format(T=self.L.mem_types[self.g.stores[si].access.dtype],
                                              n=n, V=self.V) for si, n in names.items())
        return decl, names

    # -- row-level values (reductions and what follows from them) -----------------------------
    def hoist(self, level: int) -> str:
        """Row-level values computable once the reductions of passes < level are done."""
        lines: list[str] = []
        avail = {i for i in self.red if self.g.exprs[i].level < level}
        ctx = Ctx(lambda li: f"lr{li}")
        for i, e in enumerate(self.g.exprs):
            if self.varies[i] or i in self.row_memo or e.op in _REDUCE_OPS or e.op in ("const", "matmul"):
                continue
            if self._ready(i, avail):
                self.row_memo[i] = self.value(lines, i, ctx, {})
        return "\n".join(lines)

    def _ready(self, i, avail) -> bool:
        e = self.g.exprs[i]
        if e.op in _REDUCE_OPS:
            return i in avail
        if e.op == "matmul":
            return False
        return all(self._ready(a, avail) for a in e.args)

    def row_stores(self, tag: str = "") -> str:
        """Stores of row-level values, once they are known (one thread of the row runs this)."""
        lines: list[str] = []
        ctx = Ctx(lambda li: f"lr{li}")
        for si, s in enumerate(self.g.stores):
            if si in self.stored_rows or self.store_varies(si):
                continue
            if s.expr not in self.row_memo and self.g.exprs[s.expr].op != "const" and \
                    not self._ready(s.expr, set(self.red)):
                continue
            val = self.value(lines, s.expr, ctx, {})
            acc = s.access
            val = self.L.cast(val, self.g.exprs[s.expr].dtype, acc.dtype)
            conv = self.L.store_conv.get(acc.dtype, "{x}").format(x=val)
            lines.append(f"{self.L.elem.format(buf=acc.buf, ro=f'ro_s{si}{tag}', i='0')} = {conv};")
            self.stored_rows.add(si)
        return "\n".join(lines)

    # -- reductions -----------------------------------------------------------------------------
    def reductions_of(self, level: int) -> list[int]:
        return [i for i in self.red if self.g.exprs[i].level == level]

    def acc_dtype(self, i: int) -> str:
        """The accumulator dtype of reduction i: float sums accumulate in float64."""
        e = self.g.exprs[i]
        src = self.g.exprs[e.args[0]].dtype
        if e.op in ARG_REDUCTIONS:
            return "int32" if src == "bool" else src
        if e.op in ("any", "all"):
            return "bool"
        if e.op == "sum" and family(e.dtype) == "f":
            return self.L.float_sum_dtype
        return e.dtype

    def slot_dtype(self, i: int) -> str:
        """The dtype of reduction i's per-thread accumulators (acc<i>[q])."""
        e = self.g.exprs[i]
        if self.short_sums and e.op == "sum" and self.g.exprs[e.args[0]].dtype == "float32":
            return "float32"
        return self.acc_dtype(i)

    def identity_of(self, i: int, slot: bool = False) -> str:
        e = self.g.exprs[i]
        acc = self.slot_dtype(i) if slot else self.acc_dtype(i)
        if e.op in ARG_REDUCTIONS:
            if family(acc) == "f":
                return self.L.literal(float("-inf") if e.op == "argmax" else float("inf"), acc)
            return self.L.identity("MIN" if e.op == "argmax" else "MAX", acc)
        return self.L.identity(self.L.reductions[e.op][family(acc)][0], acc)

    def combine(self, i: int, a: str, b: str, slot: bool = False) -> str:
        e = self.g.exprs[i]
        acc = self.slot_dtype(i) if slot else self.acc_dtype(i)
        return self.L.fmt(self.L.reductions[e.op][family(acc)][1], acc, a=a, b=b)

    def acc(self, i: int) -> Accumulator:
        """Reduction i's accumulator kind (ACCUMULATORS)."""
        e = self.g.exprs[i]
        kind = ACCUMULATORS.get((e.op, family(e.dtype))) or ACCUMULATORS.get(e.op, Accumulator)
        return kind(self, i)

    def _regs(self, i: int, stem: str, slot: str = "") -> list[str]:
        return [f"{stem}{sfx}{i}{slot}" for _, sfx in self.acc(i).regs()]

    def acc_vars(self, level: int) -> list[tuple[str, str]]:
        """(register type, name) of every per-thread accumulator register of a pass."""
        return [(t, f"a{sfx}{i}") for i in self.reductions_of(level) for t, sfx in self.acc(i).regs()]

    def acc_init(self, level: int, lanes: int) -> str:
        """Accumulators of a pass: `acc<i>[lanes]` per element slot (independent chains)."""
        out = []
        for i in self.reductions_of(level):
            k = self.acc(i)
            names = self._regs(i, "acc")
            out += [self.L.array.format(T=t, n=n, V=lanes) for t, n in zip(k.slot_types(), names)]
            init = " ".join(f"{n}[q] = {x};" for n, x in zip(names, k.identity(slot=True)))
            out.append(self.L.for_loop("q", 0, lanes, init))
        return "\n".join(out)

    def accumulate(self, level: int, ctx: Ctx, slot: str, kidx: str, keep=None) -> str:
        """One element into slot `slot` of the pass's accumulators (kidx: its inner index).
        keep: {expr: lvalue} element values later passes read again, written to registers."""
        lines: list[str] = []
        memo: dict = {}
        for i in self.reductions_of(level):
            k = self.acc(i)
            src = self.g.exprs[i].args[0]
            v = self.L.cast(self.value(lines, src, ctx, memo), self.g.exprs[src].dtype, k.value_dtype())
            lines += k.step(self._regs(i, "acc", f"[{slot}]"), v, kidx)
        for eid, lvalue in (keep or {}).items():
            lines.append(f"{lvalue} = {self.value(lines, eid, ctx, memo)};")
        return "\n".join(lines)

    def acc_fold(self, level: int, lanes: int) -> str:
        """Fold the slots into one per-thread value a<i> (in slot order: deterministic)."""
        out = []
        for i in self.reductions_of(level):
            k = self.acc(i)
            names = self._regs(i, "a")
            first = k.widen(self._regs(i, "acc", "[0]"))
            out += [self.L.var.format(T=t, n=n, x=x) for (t, _), n, x in zip(k.regs(), names, first)]
            if lanes > 1:
                body = " ".join(k.merge(names, k.widen(self._regs(i, "acc", "[q]"))))
                out.append(self.L.for_loop("q", 1, lanes, body))
        return "\n".join(out)

    def acc_reset(self, level: int) -> str:
        """Every per-thread accumulator of a pass back to its identity."""
        return "\n".join(f"{n} = {x};" for i in self.reductions_of(level)
                         for n, x in zip(self._regs(i, "a"), self.acc(i).identity()))

    def combine_from(self, level: int, other) -> str:
        """a<i> = combine(a<i>, other(name)) for every accumulator; other maps a register's
        name and type to the expression of the same register elsewhere (another lane, shared
        memory...). Every other register is read first: a shuffle must run on every lane,
        and a combine's || or && or if would skip it on some."""
        out = []
        for i in self.reductions_of(level):
            k = self.acc(i)
            lets, got = [], []
            for (t, _), n in zip(k.regs(), self._regs(i, "a")):
                o = self.fresh("o")
                lets.append(self.L.let.format(T=t, n=o, x=other(n, t)))
                got.append(o)
            out.append("{ " + " ".join(lets + k.merge(self._regs(i, "a"), got)) + " }")
        return "\n".join(out)

    def finish_pass(self, level: int) -> str:
        """The pass's reductions become row-level values r<i>."""
        out = []
        for i in self.reductions_of(level):
            t, val = self.acc(i).finish(self._regs(i, "a"))
            out.append(self.L.let.format(T=t, n=f"r{i}", x=val))
            self.row_memo[i] = f"r{i}"
        return "\n".join(out)

    def kept_values(self, cached, J: int, V: int, budget: int = 96) -> dict[int, int]:
        """With rows in registers (`cached` loads, J groups of V a thread): the element values
        a pass reduces that a later pass or the stores read again (softmax's exp(x - max)),
        each with the pass that computes it, while the registers they take stay in `budget`
        values a thread. Kept values are written by that pass and read, not recomputed, later."""
        kept: dict[int, int] = {}
        if not cached:
            return kept
        finals = [self.g.stores[si].expr for si in self.varying_stores()]
        for p in self.passes:
            later = [self.g.exprs[i].args[0] for q in self.passes if q > p for i in self.reductions_of(q)]
            cone = self._cone(later + finals)
            for i in self.reductions_of(p):
                src = self.g.exprs[i].args[0]
                if self.g.exprs[src].op not in ("load", "const") and src in cone and src not in kept \
                        and J * V * (len(cached) + len(kept) + 1) <= budget:
                    kept[src] = p
        return kept

    def load_users(self) -> dict[int, set]:
        """For each varying load: the passes (levels) and 'final' that read it per element."""
        use: dict[int, set] = {}
        for lvl in self.passes:
            for i in self.reductions_of(lvl):
                for li in self.varying_loads([self.g.exprs[i].args[0]]):
                    use.setdefault(li, set()).add(lvl)
        roots = [self.g.stores[si].expr for si in self.varying_stores()]
        for li in self.varying_loads(roots) if roots else []:
            use.setdefault(li, set()).add("final")
        return use


def _indent(text: str, n: int = 2) -> str:
    pad = " " * n
    return "\n".join(pad + l if l else l for l in text.split("\n"))
