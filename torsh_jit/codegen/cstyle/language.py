"""The data that spells IR in a C-like GPU language (CUDA C, MSL, WGSL): `CStyleLanguage`.

A language is a subclass that declares data: its register and memory types, op spellings
(`code_for_op`, merged as `{**CStyleLanguage.code_for_op, ...}`), casts, reductions,
literals, qualifiers, barrier, shuffles and thread-index builtins, and the few words its
skeletons differ by (how a launch is described, how scalars arrive, the reduce skeleton's
exchange of partials). 16-bit floats are held in registers as float and rounded after every
operation (`round_to`): numpy's arithmetic for float16 (and ml_dtypes' for bfloat16).
"""
from __future__ import annotations

import math
import struct

from ...ir.dtypes import ITEMSIZE, family
from ...ir.ops import INT_LIMITS
from ...ir.symbols import is_symbolic


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


    # -- what the shared skeletons (skeletons.py) ask of a language ------------------------
    vec_flag = "vec_ok"                # the condition for wide accesses, as skeletons test it
    array2 = "{T} {n}[{J}][{V}];"      # a local array of J x V values
    units_scoped = False               # elementwise units are blocks of their own (no name tags)
    cache_whole_rows = False           # the reduce skeleton keeps only whole rows in registers

    # symbolic sizes (sizes.py): the size table's dtype, and x // d (d > 0) with floor semantics
    size_dtype = "int64"
    size_let = "[[maybe_unused]] const {T} {n} = {x};"     # a size local (unused in some kernels)
    size_floordiv = "(({x}) >= 0 ? ({x}) / {d} : (({x}) - {dm1}) / {d})"

    def index_type(self, group) -> str:
        """int where every offset fits in 31 bits, else the language's 64-bit integer. A group
        of symbolic sizes asks the same of a bound on its offsets (the elements plus every
        access's span), which records a guard: a call past 2^31 compiles a 64-bit variant,
        as Triton's int32 indexing does."""
        from .sizes import symbolic_group
        if symbolic_group(group):
            dom = tuple(group.domain) + ((group.k,) if group.mm else ())
            bound = math.prod(group.domain) if group.domain else 1
            for a in list(group.loads) + [s.access for s in group.stores] + list(group.mm):
                bound = bound + _magnitude(a.offset) + sum(
                    (d - 1) * _magnitude(s) for d, s in zip(dom, a.strides))
            return "int" if bound < 2**31 - 1 else self.types[self.size_dtype]
        big = math.prod(group.domain) if group.domain else 1
        dom = group.domain
        accs = list(group.loads) + [s.access for s in group.stores]
        for a in accs:
            span = abs(a.offset) + sum((d - 1) * abs(s) for d, s in zip(dom, a.strides))
            big = max(big, span + 1)
        for a in group.mm:
            span = abs(a.offset) + sum((d - 1) * abs(s) for d, s in zip(tuple(dom) + (group.k,), a.strides))
            big = max(big, span + 1)
        return "int" if big < 2**31 - 1 else self.types["int64"]

    def scalar_lets(self, em) -> str:
        """Statements that give scalar arguments their names b<k> (none: they are parameters)."""
        return ""

    def pass_accs(self, em, p, name: str):
        """What the reduce skeleton declares per accumulator register of pass p."""
        return em.acc_vars(p)

    def pass_exchange(self, em, p, name: str, rows: int, nslot: int) -> dict:
        """A pass's partials combined through shared memory and the split's workspace."""
        return dict(
            from_smem=em.combine_from(p, lambda n, t: f"sh_{n}[w]"),
            from_ws=em.combine_from(p, lambda n, t: f"*(volatile {t}*)(ws + ((({em.passes.index(p)}LL * {rows} + row) * S + s) * {nslot} + {slot_of(em, p, n)}))"),
            reset=em.acc_reset(p),
            pi=em.passes.index(p),
        )

    def describe_launch(self, launch) -> str:
        raise NotImplementedError(f"{self.name} does not describe launches")


def slot_of(em, p, name) -> int:
    """The workspace slot of accumulator register `name` of pass p."""
    return [n for _, n in em.acc_vars(p)].index(name)


def _magnitude(x):
    """|x| for an offset or stride: a symbolic one is a size expression, never negative."""
    return x if is_symbolic(x) else abs(x)
