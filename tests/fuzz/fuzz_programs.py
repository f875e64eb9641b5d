"""Random array programs for the differential fuzzer: hypothesis strategies that build a
small DAG of numpy operations, statement by statement, and render it as the source of a
Python function.

Every statement is tried on the real input data with numpy while the program is being
drawn, so the generator knows each value's shape and dtype and can steer towards
programs numpy accepts (an operand of a fitting shape, an axis that exists). Now and
then it keeps a statement numpy rejects as the last one: torsh-jit must reject it too.

Structure comes from hypothesis draws (so failures shrink to a few statements); the
values of the inputs come from a numpy generator seeded by one drawn integer (hypothesis
would otherwise favour arrays of zeros).
"""
from __future__ import annotations

import linecache
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

ALL_DTYPES = ("bool", "int32", "int64", "float32", "float64")
WGSL_DTYPES = ("bool", "int32", "float32")
SMALL_SIZES = (1, 2, 3, 5, 7, 13, 2, 3, 5, 0, 11)
BIG_SIZES = (65537, 70001, 65539)

# -- inputs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Input:
    name: str
    shape: tuple
    dtype: str
    layout: str          # "C", "T" (transposed storage), "step" (every other row), "neg" (rows reversed)
    seed: int
    special: bool        # sprinkle nan/inf/-0.0/ties (floats), extremes (ints)


@dataclass(frozen=True)
class Scalar:
    name: str
    value: object        # a Python bool/int/float passed as an argument


def make_input(inp: Input) -> np.ndarray:
    """The array an Input stands for (deterministic in its seed), in its memory layout."""
    rng = np.random.default_rng(inp.seed)
    shape = inp.shape
    nd = len(shape)
    layout = inp.layout if nd >= 1 else "C"
    if layout == "T" and nd < 2:
        layout = "C"
    store = tuple(reversed(shape)) if layout == "T" else \
        ((shape[0] * 2,) + shape[1:] if layout == "step" else shape)
    d = np.dtype(inp.dtype)
    n = int(np.prod(store, dtype=np.int64))
    if d == np.bool_:
        x = rng.random(n) < 0.5
    elif d.kind == "i":
        x = rng.integers(-9, 10, n).astype(d)
        if inp.special and n:
            info = np.iinfo(d)
            sp = np.array([0, 1, -1, info.max, info.min, info.max - 1, info.min + 1], d)
            m = rng.random(n) < 0.1
            x[m] = rng.choice(sp, int(m.sum()))
    else:
        x = (rng.standard_normal(n) * 3).astype(d)
        ties = rng.random(n) < 0.2
        x[ties] = rng.integers(-4, 5, int(ties.sum())) * 0.5       # exact halves: rint/floor ties
        if inp.special and n:
            sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 2.5, -0.5, 1e30, 1e-30], d)
            m = rng.random(n) < 0.1
            x[m] = rng.choice(sp, int(m.sum()))
    x = x.reshape(store)
    if layout == "T":
        return x.T
    if layout == "step":
        return x[::2]
    if layout == "neg":
        return x[::-1]
    return x


# -- programs ---------------------------------------------------------------------------------
@dataclass
class Val:
    """What the generator knows of a value while drawing."""
    name: str
    shape: tuple
    dtype: str
    kind: str                    # "input", "node"
    root: str                    # the value this one is a view of (itself if not a view)
    deps: frozenset              # names of every value it was computed from, itself included
    op: str = ""                 # "reduce", "matmul", "view", ... of the statement that made it
    inexact: bool = False        # depends on an op whose last bits differ between implementations


@dataclass
class Program:
    params: list                 # Input | Scalar, in argument order
    stmts: list                  # (name, expression source)
    outputs: list                # names returned (a tuple when more than one)
    tuple_out: bool
    use_out: bool = False        # call with out= (fresh buffers, or an input where it fits)
    out_alias: dict = field(default_factory=dict)   # output index -> param index written in place
    expect_error: str = ""       # numpy's exception at the last statement, if it raised
    fragile: bool = False        # a discontinuous op reads an inexact value (see fuzz_check)
    n_ops: int = 0
    red_n: int = 1               # the most elements one reduction or matmul adds up
    target: str = "host"
    _fn: object = None

    def source(self) -> str:
        args = ", ".join(p.name for p in self.params)
        lines = [f"def f({args}):"]
        lines += [f"    {n} = {e}" for n, e in self.stmts]
        if self.outputs:
            ret = ", ".join(self.outputs) + ("," if self.tuple_out and len(self.outputs) == 1 else "")
            lines.append(f"    return {ret}")
        return "\n".join(lines) + "\n"

    def function(self):
        """The program as a Python function; its source is registered with linecache so
        tracebacks and torsh-jit's error locations show the line."""
        if self._fn is None:
            src = self.source()
            fname = f"<fuzz-{abs(hash(src)) & 0xffffffff:08x}>"
            linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
            ns = {"np": np}
            exec(compile(src, fname, "exec"), ns)
            self._fn = ns["f"]
        return self._fn

    def args(self) -> list:
        return [make_input(p) if isinstance(p, Input) else p.value for p in self.params]

    def repro(self) -> str:
        """A script that rebuilds the inputs and runs the program both ways."""
        lines = ["import numpy as np", "import torsh_jit as tj", "nan, inf = np.nan, np.inf", ""]
        lines.append(self.source())
        for p, a in zip(self.params, self.args()):
            if isinstance(p, Scalar):
                lines.append(f"{p.name} = {p.value!r}")
            elif a.size <= 64:
                # the values, then the same memory layout (strides) as the fuzzer used
                lit = lambda v: f"np.array({np.asarray(v).tolist()!r}, dtype=np.{p.dtype})"  # noqa: E731
                lines.append(f"{p.name} = " + {
                    "T": lambda: f"{lit(a.T)}.T",
                    "step": lambda: f"np.repeat({lit(a)}, 2, axis=0)[::2]",
                    "neg": lambda: f"{lit(a[::-1])}[::-1]",
                }.get(p.layout if a.ndim >= (2 if p.layout == "T" else 1) else "C",
                      lambda: lit(a))())
            else:
                lines.append(f"{p.name} = make_input({p!r})   # from tests/fuzz/fuzz_programs.py")
        names = ", ".join(p.name for p in self.params)
        lines.append(f"args = ({names}{',' if len(self.params) == 1 else ''})")
        lines.append("want = f(*args)")
        call = "(*args)"
        if self.use_out and not self.expect_error:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                r = self.function()(*self.args())
            r = tuple(r) if self.tuple_out or len(self.outputs) > 1 else (r,)
            bufs = [self.params[self.out_alias[j]].name if j in self.out_alias
                    else f"np.empty({np.shape(w)!r}, np.{np.asarray(w).dtype.name})" for j, w in enumerate(r)]
            one = len(bufs) == 1 and not self.tuple_out
            call = f"(*args, out={bufs[0] if one else '(' + ', '.join(bufs) + ',)'})"
        lines.append(f"got = tj.kernel(f, target={self.target!r}){call}")
        if self.expect_error:
            lines.append(f"# numpy raises: {self.expect_error}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):      # what hypothesis prints for a failing example
        p.text(repr(self))

    def __repr__(self):
        return "\n" + self.repro() + "\n"


def _quiet_eval(expr, env):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return eval(expr, {"np": np}, env)


def _lit(v) -> str:
    if isinstance(v, float):
        if v == 0 and math.copysign(1, v) < 0:
            return "-0.0"
        return repr(v)
    return repr(v)


INT_LITS = (2, 1, 0, -1, 3, 7, -5)
FLOAT_LITS = (0.5, -1.5, 2.0, 1e-3, 3.25, -0.0, 1.0)
BOOL_LITS = (True, False)

# name -> (template, inexact, discontinuous)
UNARY = {
    "neg": ("-{a}", False, False), "abs": ("np.abs({a})", False, False),
    "floor": ("np.floor({a})", False, True), "ceil": ("np.ceil({a})", False, True),
    "rint": ("np.rint({a})", False, True), "round": ("np.round({a})", False, True),
    "sign": ("np.sign({a})", False, True), "not": ("np.logical_not({a})", False, True),
    "square": ("np.square({a})", False, False), "pos": ("+{a}", False, False),
    "invert": ("~{a}", False, True), "reciprocal": ("np.reciprocal({a})", False, False),
    "exp": ("np.exp({a})", True, False), "exp2": ("np.exp2({a})", True, False),
    "expm1": ("np.expm1({a})", True, False), "log": ("np.log({a})", True, False),
    "log_safe": ("np.log(np.abs({a}) + 1)", True, False),
    "log2_safe": ("np.log2(np.abs({a}) + 0.5)", True, False),
    "log1p_safe": ("np.log1p(np.abs({a}))", True, False),
    "sqrt": ("np.sqrt({a})", False, False), "sqrt_safe": ("np.sqrt(np.abs({a}))", False, False),
    "sin": ("np.sin({a})", True, False), "cos": ("np.cos({a})", True, False),
    "tan": ("np.tan({a})", True, False), "tanh": ("np.tanh({a})", True, False),
    "exp_tanh": ("np.exp(np.tanh({a}))", True, False),
}
BINARY = {
    "+": ("{a} + {b}", False, False), "-": ("{a} - {b}", False, False),
    "*": ("{a} * {b}", False, False), "/": ("{a} / {b}", False, False),
    "//": ("{a} // {b}", False, True), "%": ("{a} % {b}", False, True),
    "**": ("{a} ** {b}", True, False),
    "maximum": ("np.maximum({a}, {b})", False, False), "minimum": ("np.minimum({a}, {b})", False, False),
    "and": ("np.logical_and({a}, {b})", False, True), "or": ("np.logical_or({a}, {b})", False, True),
    "xor": ("np.logical_xor({a}, {b})", False, True),
    "&": ("{a} & {b}", False, True), "|": ("{a} | {b}", False, True), "^": ("{a} ^ {b}", False, True),
}
COMPARE = ("<", "<=", ">", ">=", "==", "!=")
REDUCE = ("sum", "sum", "prod", "max", "min", "mean", "argmax", "argmin", "any", "all")


class _Builder:
    """Draws one program; `vals` are the values statements may use."""

    def __init__(self, draw, dtypes, sizes, target, allow_errors, big):
        self.draw = draw
        self.dtypes = dtypes
        self.sizes = sizes
        self.target = target
        self.allow_errors = allow_errors
        self.big = big
        self.seed = draw(st.integers(0, 2**32 - 1))
        self.special = draw(st.integers(0, 3)) == 0
        self.params: list = []
        self.env: dict = {}
        self.vals: list[Val] = []
        self.stmts: list = []
        self.error = ""
        self.fragile = False
        self.n_ops = 0
        self.red_n = 1

    # -- leaves ------------------------------------------------------------------------------
    def new_input(self, shape, dtype=None) -> Val:
        d = self.draw
        dtype = dtype or d(st.sampled_from(self.dtypes))
        layout = d(st.sampled_from(("C", "C", "C", "T", "step", "neg")))
        i = len(self.params)
        inp = Input(f"x{i}", tuple(shape), dtype, layout, (self.seed * 7919 + i) % 2**32, self.special)
        self.params.append(inp)
        self.env[inp.name] = make_input(inp)
        v = Val(inp.name, tuple(shape), dtype, "input", inp.name, frozenset([inp.name]))
        self.vals.append(v)
        return v

    def scalar_literal(self, like: str | None = None) -> str:
        kind = self.draw(st.sampled_from(("int", "int", "float", "float", "bool", "big")
                                         if self.allow_errors else ("int", "int", "float", "float", "bool")))
        if kind == "big":
            return str(2**31 + 5)           # out of int32's range: numpy raises OverflowError with int32
        if kind == "int":
            return _lit(self.draw(st.sampled_from(INT_LITS)))
        if kind == "float":
            return _lit(self.draw(st.sampled_from(FLOAT_LITS)))
        return _lit(self.draw(st.sampled_from(BOOL_LITS)))

    def scalar_param(self) -> str:
        kind = self.draw(st.sampled_from(("int", "float", "bool")))
        v = {"int": lambda: self.draw(st.sampled_from(INT_LITS)),
             "float": lambda: self.draw(st.sampled_from(FLOAT_LITS)),
             "bool": lambda: self.draw(st.sampled_from(BOOL_LITS))}[kind]()
        s = Scalar(f"s{len(self.params)}", v)
        self.params.append(s)
        self.env[s.name] = v
        return s.name

    def shape(self, nd=None):
        d = self.draw
        nd = d(st.integers(0, 3)) if nd is None else nd
        if self.big:
            nd = d(st.integers(1, 2)) if nd == 0 or nd > 2 else nd
            big_axis = d(st.integers(0, nd - 1))
            return tuple(d(st.sampled_from(BIG_SIZES)) if i == big_axis else d(st.sampled_from((1, 2, 3)))
                         for i in range(nd))
        return tuple(d(st.sampled_from(self.sizes)) for _ in range(nd))

    def broadcast_partner(self, shape):
        """A shape that broadcasts with `shape`: trailing dims, some set to 1 (or, now and
        then, an extra leading dim)."""
        d = self.draw
        k = d(st.integers(0, len(shape)))
        out = [1 if d(st.integers(0, 4)) == 0 else s for s in shape[k:]]
        if d(st.integers(0, 5)) == 0 and not self.big:
            out = [d(st.sampled_from(self.sizes))] + out
        return tuple(out)

    # -- picking operands ----------------------------------------------------------------------
    def pick(self, pred=lambda v: True) -> Val | None:
        cands = [v for v in self.vals if pred(v)]
        if not cands:
            return None
        c = self.draw(st.integers(0, 4))
        if c < 2:
            return cands[-1]             # chains: the newest value
        if c == 2:
            # a value nothing reads yet: without it, most statements would be dead code
            used = set().union(*[v.deps - {v.name} for v in self.vals])
            unused = [v for v in cands if v.name not in used]
            if unused:
                return unused[self.draw(st.integers(0, len(unused) - 1))]
        return cands[self.draw(st.integers(0, len(cands) - 1))]

    # -- statements ----------------------------------------------------------------------------
    def add(self, expr, parents, op, inexact=False, discontinuous=False, view=False) -> bool:
        """Try a statement on the data; keep it if numpy accepts it (or, rarely, as the
        program's final, rejected statement). True when the program must end here."""
        name = f"v{len(self.stmts)}"
        try:
            r = _quiet_eval(expr, self.env)
        except Exception as e:               # noqa: BLE001 - any numpy rejection is an expected error
            if self.allow_errors and self.draw(st.integers(0, 3)) == 0:
                self.stmts.append((name, expr))
                self.error = f"{type(e).__name__}: {e}"
                return True
            return False
        if not isinstance(r, (np.ndarray, np.generic)) or np.dtype(r.dtype).name not in self.dtypes:
            return False
        if self.big and r.size > 300_000:
            return False
        r = np.asarray(r) if isinstance(r, np.generic) else r
        inex = inexact and np.dtype(r.dtype).kind == "f" or any(p.inexact for p in parents)
        if discontinuous and any(p.inexact for p in parents):
            self.fragile = True
        if discontinuous and inexact:
            self.fragile = True
        deps = frozenset([name]).union(*[p.deps for p in parents]) if parents else frozenset([name])
        root = parents[0].root if view and parents else name
        self.stmts.append((name, expr))
        self.env[name] = r
        self.vals.append(Val(name, r.shape, np.dtype(r.dtype).name, "node", root, deps, op, inex))
        self.n_ops += 1
        return False

    def operand(self, base: Val) -> tuple[str, list]:
        """The second operand of a binary op: a value, a literal, a scalar argument or a new
        input of a shape that broadcasts with base."""
        d = self.draw
        c = d(st.integers(0, 9))
        if c < 4:
            v = self.pick()
            if v is not None:
                return v.name, [v]
        if c < 6:
            return self.scalar_literal(), []
        if c < 7:
            return self.scalar_param(), []
        v = self.new_input(self.broadcast_partner(base.shape))
        return v.name, [v]

    def step(self) -> bool:
        d = self.draw
        kind = d(st.sampled_from(
            ["unary"] * 4 + ["binary"] * 6 + ["compare"] * 2 + ["where"] * 2 + ["reduce"] * 4
            + ["slice"] * 2 + ["transpose", "reshape", "newaxis", "astype", "self"]
            + ([] if self.big else ["matmul"] * 2 + ["index"])))
        return getattr(self, "s_" + kind)()

    def s_unary(self):
        a = self.pick()
        name = self.draw(st.sampled_from(sorted(UNARY)))
        if name == "invert" and a.dtype != "bool" and self.draw(st.integers(0, 3)):
            name = "not"
        tpl, inexact, disc = UNARY[name]
        return self.add(tpl.format(a=a.name), [a], "unary", inexact, disc)

    def s_binary(self):
        a = self.pick()
        op = self.draw(st.sampled_from(sorted(BINARY)))
        if op in ("&", "|", "^") and a.dtype != "bool" and self.draw(st.integers(0, 3)):
            op = "and"                    # bitwise ops on ints are refused by design: rare
        b, parents = self.operand(a)
        if op == "**":
            b, parents = self._exponent(a, b, parents)
        if not parents and self.draw(st.integers(0, 2)) == 0:
            tpl = BINARY[op][0].format(a=b, b=a.name)      # the scalar on the left
        else:
            tpl = BINARY[op][0].format(a=a.name, b=b)
        _, inexact, disc = BINARY[op]
        return self.add(tpl, [a] + parents, "binary", inexact, disc)

    def _exponent(self, a, b, parents):
        """Integer powers with a negative integer exponent raise in numpy; keep array
        exponents of ints non-negative, and use a negative literal only as an error case."""
        if a.dtype in ("bool", "int32", "int64"):
            if parents and parents[0].dtype in ("bool", "int32", "int64"):
                if self.draw(st.integers(0, 5)):
                    return str(self.draw(st.sampled_from((0, 1, 2, 3)))), []
                return f"(np.abs({b}) % 3)", parents     # torsh-jit refuses these: rare
            if not parents and b not in self.env:
                if self.allow_errors and self.draw(st.integers(0, 5)) == 0:
                    return "-1", []
                return str(self.draw(st.sampled_from((0, 1, 2, 3)))), []
            if b in self.env and not parents and isinstance(self.env[b], (int, bool)):
                return str(self.draw(st.sampled_from((0, 1, 2, 3)))), []
        return b, parents

    def s_compare(self):
        a = self.pick()
        op = self.draw(st.sampled_from(COMPARE))
        b, parents = self.operand(a)
        return self.add(f"{a.name} {op} {b}", [a] + parents, "compare", False, True)

    def s_where(self):
        d = self.draw
        a = self.pick()
        if a.dtype == "bool" and d(st.booleans()):
            cond, cp = a.name, [a]
        else:
            cond, cp = f"{a.name} > {self.scalar_literal()}", [a]
        x, xp = self.operand(a)
        y, yp = self.operand(a)
        return self.add(f"np.where({cond}, {x}, {y})", cp + xp + yp, "where", False, True)

    def s_reduce(self):
        d = self.draw
        a = self.pick()
        op = d(st.sampled_from(REDUCE))
        nd = len(a.shape)
        c = d(st.integers(0, 9))
        if c < 3 or nd == 0:
            axis = None
        elif c < 8 or op.startswith("arg"):
            axis = d(st.integers(-nd, nd - 1))
            if self.allow_errors and d(st.integers(0, 15)) == 0:
                axis = nd                    # out of bounds: numpy raises AxisError
        else:
            k = d(st.integers(1, nd))
            axes = d(st.permutations(range(nd)))[:k]
            axis = tuple(ax - nd if d(st.booleans()) else ax for ax in axes)
        keep = d(st.booleans())
        args = [] if axis is None and d(st.booleans()) else [f"axis={axis!r}"]
        if keep:
            args.append("keepdims=True")
        if d(st.integers(0, 3)) == 0 and not op.startswith("arg"):
            expr = f"np.{op}({', '.join([a.name] + args)})"
        else:
            expr = f"{a.name}.{op}({', '.join(args)})"
        axes = range(nd) if axis is None else ((axis,) if isinstance(axis, int) else axis)
        n = 1
        for ax in axes:
            if -nd <= ax < nd:
                n *= a.shape[ax]
        self.red_n = max(self.red_n, n)
        inexact = op in ("sum", "mean", "prod") and a.dtype.startswith("float") or op == "mean"
        disc = op in ("argmax", "argmin", "any", "all")
        return self.add(expr, [a], "reduce", inexact, disc)

    def _slice1(self, n):
        d = self.draw
        if d(st.integers(0, 2)) == 0:
            return ":"
        step = d(st.sampled_from((1, 2, 3, -1, -2, -3, None)))
        bound = st.sampled_from((None, 0, 1, 2, -1, -2, 5, n))
        start, stop = d(bound), d(bound)
        s = ("" if start is None else str(start)) + ":" + ("" if stop is None else str(stop))
        if step is not None:
            s += f":{step}"
        return s

    def s_slice(self):
        a = self.pick(lambda v: len(v.shape) >= 1)
        if a is None:
            return False
        k = self.draw(st.integers(1, len(a.shape)))
        parts = [self._slice1(n) for n in a.shape[:k]]
        if self.draw(st.integers(0, 4)) == 0 and k < len(a.shape):
            parts = ["..."] + [self._slice1(n) for n in a.shape[-k:]]
        return self.add(f"{a.name}[{', '.join(parts)}]", [a], "view", view=True)

    def s_transpose(self):
        a = self.pick()
        nd = len(a.shape)
        c = self.draw(st.integers(0, 2))
        if c == 0 or nd < 2:
            expr = f"{a.name}.T"
        elif c == 1:
            perm = self.draw(st.permutations(range(nd)))
            expr = f"np.transpose({a.name}, {tuple(perm)!r})"
        else:
            i, j = self.draw(st.integers(-nd, nd - 1)), self.draw(st.integers(-nd, nd - 1))
            expr = f"np.swapaxes({a.name}, {i}, {j})"
        return self.add(expr, [a], "view", view=True)

    def s_reshape(self):
        d = self.draw
        a = self.pick()
        n = int(np.prod(a.shape, dtype=np.int64))
        divs = [k for k in range(1, n + 1) if n % k == 0][:8] or [1]
        c = d(st.integers(0, 5))
        if c == 0:
            new = (-1,)
        elif c == 1 and n:
            k = d(st.sampled_from(divs))
            new = (k, -1) if d(st.booleans()) else (-1, k)
        elif c == 2 and self.allow_errors:
            new = (n + 1,)                   # wrong size: numpy raises
        elif c == 3:
            new = (1,) + tuple(a.shape) if d(st.booleans()) else tuple(s for s in a.shape if s != 1)
        else:
            k = d(st.sampled_from(divs))
            new = (k, n // k) if k else (0,)
            if d(st.booleans()):
                new = new + (1,)
        return self.add(f"{a.name}.reshape({', '.join(map(str, new)) or '()'})", [a], "view", view=True)

    def s_newaxis(self):
        a = self.pick()
        nd = len(a.shape)
        c = self.draw(st.integers(0, 2))
        if c == 0 or nd == 0:
            expr = f"{a.name}[None]"
        elif c == 1:
            expr = f"{a.name}[:, None]"
        else:
            expr = f"{a.name}[..., None]"
        return self.add(expr, [a], "view", view=True)

    def s_index(self):
        a = self.pick(lambda v: len(v.shape) >= 1)
        if a is None:
            return False
        n = a.shape[0]
        i = self.draw(st.integers(-n - 1 if self.allow_errors else -n, max(n - 1, 0)))
        return self.add(f"{a.name}[{i}]", [a], "view", view=True)

    def s_astype(self):
        a = self.pick()
        to = self.draw(st.sampled_from(self.dtypes))
        x = self.env[a.name]
        src = a.name
        if to in ("int32", "int64") and x.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                if x.size and not (np.isfinite(x).all() and np.abs(x).max() < 2**31):
                    src = f"np.where(np.abs({a.name}) < 1e6, {a.name}, 0)"   # in range: defined casts
        return self.add(f"{src}.astype(np.{to})", [a], "astype", False,
                        to in ("bool", "int32", "int64") and x.dtype.kind == "f")

    def s_self(self):
        """The same value twice in one op: the shapes of bugs that only show when one
        buffer is read through two index maps."""
        d = self.draw
        a = self.pick(lambda v: len(v.shape) >= 1) or self.pick()
        nd = len(a.shape)
        forms = ["{a} * {a}", "{a} + {a}.T", "{a}[:, None] + {a}", "{a} - {a}[::-1]", "{a} @ {a}",
                 "{a} @ {a}.T", "{a}.T @ {a}", "np.where({a} > 0, {a}, {a}.T)"]
        f = d(st.sampled_from(forms))
        ok_nd = nd >= 1 if "@" in f else True
        if not ok_nd:
            f = "{a} * {a}"
        if "@" in f:
            self.red_n = max(self.red_n, a.shape[-1] if nd else 1, a.shape[0] if nd else 1)
        return self.add(f.format(a=a.name), [a], "matmul" if "@" in f else "binary",
                        "@" in f and a.dtype.startswith("float"))

    def s_matmul(self):
        d = self.draw
        a = self.pick(lambda v: len(v.shape) >= 1)
        if a is None:
            a = self.new_input(self.shape(d(st.integers(1, 3))))
        c = d(st.integers(0, 3))
        b = None
        if c == 0:
            b = self.pick(lambda v: len(v.shape) >= 1 and v.shape[-1 if len(v.shape) == 1 else -2] == a.shape[-1])
        if b is None:
            k = a.shape[-1]
            n = d(st.sampled_from(self.sizes))
            r = d(st.integers(1, 3))
            bshape = (k,) if r == 1 else (k, n) if r == 2 else \
                ((a.shape[:-2] or (d(st.sampled_from(self.sizes)),))[-1:] + (k, n))
            if self.allow_errors and d(st.integers(0, 9)) == 0:
                bshape = bshape[:-2] + (k + 1,) + bshape[-1:] if len(bshape) >= 2 else (k + 1,)
            dt = a.dtype if d(st.booleans()) else None
            b = self.new_input(bshape, dt)
        a_name, b_name = a.name, b.name
        swap = d(st.integers(0, 3)) == 0 and len(a.shape) >= 2 and \
            (len(b.shape) == 1 and b.shape[0] == a.shape[-2] or len(b.shape) >= 2 and b.shape[-1] == a.shape[-2])
        (left, ln), (right, rn) = ((b, b_name), (a, a_name)) if swap else ((a, a_name), (b, b_name))
        self.red_n = max(self.red_n, left.shape[-1])
        expr = f"{ln} @ {rn}" if d(st.integers(0, 4)) else f"np.matmul({ln}, {rn})"
        return self.add(expr, [left, right], "matmul", left.dtype.startswith("float")
                        or right.dtype.startswith("float"))

    # -- the whole program ---------------------------------------------------------------------
    def outputs(self):
        d = self.draw
        nodes = [v for v in self.vals if v.kind == "node"]
        last = nodes[-1]
        outs = [last]
        multi = d(st.integers(0, 2)) == 0
        if multi and d(st.booleans()):
            # every value nothing else reads: no statement is dead code
            used = set().union(*[v.deps - {v.name} for v in self.vals])
            outs = [v for v in nodes if v.name not in used][-3:]
            if d(st.integers(0, 3)) == 0:
                outs.append(self.vals[0])             # an input returned beside computed values
            return outs, True
        if multi:
            for _ in range(d(st.integers(1, 2))):
                v = self.pick()
                outs.append(v)
        return outs, multi

@st.composite
def programs(draw, target="host", dtypes=ALL_DTYPES, sizes=SMALL_SIZES, big=False,
             max_stmts=6, allow_errors=True):
    """One random program (a Program) for `target`, over inputs of `dtypes`."""
    b = _Builder(draw, dtypes, sizes, target, allow_errors, big)
    b.new_input(b.shape())
    n = draw(st.integers(1, max_stmts))
    ended = False
    for _ in range(n * 2):               # a rejected statement costs a turn
        if b.step():
            ended = True
            break
        if sum(v.kind == "node" for v in b.vals) >= n:
            break
    if not ended and not any(v.kind == "node" for v in b.vals):
        b.add(f"{b.vals[0].name} + 1", [b.vals[0]], "binary")
        if not any(v.kind == "node" for v in b.vals):
            b.add(f"np.abs({b.vals[0].name})", [b.vals[0]], "unary")
    if ended:
        outs, multi = [], False
        prog_outs = [b.stmts[-1][0]]
    else:
        nodes = [v for v in b.vals if v.kind == "node"]
        if not nodes:
            from hypothesis import assume
            assume(False)
        outs, multi = b.outputs()
        prog_outs = [v.name for v in outs]
    p = Program(b.params, b.stmts, prog_outs, multi, expect_error=b.error, fragile=b.fragile,
                n_ops=b.n_ops, red_n=b.red_n, target=target)
    if not ended and draw(st.integers(0, 3)) == 0:
        p.use_out = True
        # an output written into an input of its shape and dtype: in place, as numpy's out=
        if draw(st.booleans()):
            for i, o in enumerate(outs):
                for j, prm in enumerate(b.params):
                    if isinstance(prm, Input) and prm.shape == o.shape and prm.dtype == o.dtype \
                            and make_input(prm).flags.c_contiguous and j not in p.out_alias.values():
                        p.out_alias[i] = j
                        break
    return p
