"""Property tests: random expression trees over random broadcast-compatible shapes.

Hypothesis draws 1-3 inputs whose shapes broadcast together (0-3 dimensions, sizes
0-9), their dtypes, and a tree of depth <= 4 over the elementwise ops (sometimes with a
reduction at the root). The same tree is evaluated by numpy on the arrays and traced by
torsh-jit; the answers must agree:

- exactly (NaN equal to NaN) for trees of ops that are exact in IEEE arithmetic or on
  integers: they have one right answer, and numpy gives it;
- within a tolerance scaled to the largest intermediate value for trees of smooth
  float ops (transcendental functions are a few ulp apart between implementations).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import torsh_jit as tj

SETTINGS = settings(max_examples=int(os.environ.get("TORSH_JIT_PROPERTY_EXAMPLES", 60)), deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# name -> (numpy-side callable, torsh_jit-side callable); numpy ufuncs trace on Tensors too
EXACT_UNARY = {"neg": np.negative, "abs": np.abs, "floor": np.floor, "ceil": np.ceil,
               "round": np.rint, "sign": np.sign, "sqrt": np.sqrt, "relu": tj.relu,
               "not": np.logical_not}
EXACT_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
                "floordiv": np.floor_divide, "mod": np.remainder, "maximum": np.maximum,
                "minimum": np.minimum, "lt": np.less, "le": np.less_equal, "eq": np.equal,
                "ne": np.not_equal, "and": np.logical_and, "xor": np.logical_xor}
SMOOTH_UNARY = {"neg": np.negative, "abs": np.abs, "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
                "sigmoid": tj.sigmoid, "erf": tj.erf,
                "exp_tanh": lambda x: np.exp(np.tanh(x)),          # bounded argument
                "log1p_abs": lambda x: np.log1p(np.abs(x)),         # in-domain argument
                "sqrt_abs": lambda x: np.sqrt(np.abs(x))}
SMOOTH_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
                 "minimum": np.minimum}
EXACT_REDUCE = ["max", "min", "any", "all", "argmax", "argmin", "sum"]
SMOOTH_REDUCE = ["sum", "mean", "max", "min"]
DTYPES = ["bool", "int32", "int64", "float32", "float64"]
CONSTS = [2, -1, 0, 3, 0.5, -1.5, True, np.float32(1.25), np.int32(-2)]


def evaluate(node, xs, table, track=None):
    """Evaluate a tree on arrays (numpy) or Tensors (inside a kernel): same code, both sides."""
    kind = node[0]
    if kind == "in":
        v = xs[node[1]]
    elif kind == "const":
        v = node[1]
    elif kind == "un":
        v = table[node[1]](evaluate(node[2], xs, table, track))
    elif kind == "bin":
        v = table[node[1]](evaluate(node[2], xs, table, track), evaluate(node[3], xs, table, track))
    elif kind == "where":
        v = np.where(evaluate(node[1], xs, table, track), evaluate(node[2], xs, table, track),
                     evaluate(node[3], xs, table, track))
    elif kind == "reduce":
        _, op, axis, child = node
        c = evaluate(child, xs, table, track)
        v = getattr(tj, op)(c, axis) if op.startswith("arg") else getattr(tj, op)(c, axis)
    else:
        raise AssertionError(kind)
    if track is not None and isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size:
        fin = np.abs(v[np.isfinite(v)])
        if fin.size:
            track[0] = max(track[0], float(fin.max()))
    return v


def quiet(fn, *a):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*a)


def _dtype_of(node, in_dtypes, table):
    """numpy's dtype for the tree (None where numpy rejects it or torsh-jit lacks the dtype)."""
    try:
        r = quiet(evaluate, node, [np.zeros((1,), d) for d in in_dtypes], table)
    except (TypeError, ValueError):
        return None
    d = np.asarray(r).dtype.name
    return d if d in DTYPES else None


@st.composite
def shapes(draw):
    """1-3 shapes that broadcast together: a base shape of 0-3 dimensions (sizes 0-9), each
    input dropping leading dimensions and setting some to 1.

    Drawn from a seed with numpy: left to itself, hypothesis favours its simplest choices
    and most examples would be 0-d or of size 1."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nd = int(rng.integers(0, 4))
    base = [int(v) for v in rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5, 7], nd)]
    out = []
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(0, nd + 1)) if rng.random() < 0.4 else 0
        out.append(tuple(1 if rng.random() < 0.2 else d for d in base[k:]))
    return out


@st.composite
def trees(draw, n_in, in_dtypes, unary, binary, allow_where, depth=4):
    """A tree over inputs 0..n_in-1 whose every node numpy accepts."""
    table = {**unary, **binary}
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        if draw(st.integers(0, 4)) == 0:
            return ("const", draw(st.sampled_from(CONSTS)))
        return ("in", draw(st.integers(0, n_in - 1)))
    kind = draw(st.sampled_from(["un", "un", "bin", "bin", "bin"] + (["where"] if allow_where else [])))
    sub = lambda: draw(trees(n_in, in_dtypes, unary, binary, allow_where, depth - 1))  # noqa: E731
    if kind == "un":
        child = sub()
        ok = [op for op in unary if _dtype_of(("un", op, child), in_dtypes, table)]
        assume(ok)
        return ("un", draw(st.sampled_from(ok)), child)
    if kind == "bin":
        a, b = sub(), sub()
        ok = [op for op in binary if _dtype_of(("bin", op, a, b), in_dtypes, table)]
        assume(ok)
        return ("bin", draw(st.sampled_from(ok)), a, b)
    cond = ("bin", draw(st.sampled_from(["lt", "ne"])), sub(), sub())
    node = ("where", cond, sub(), sub())
    assume(_dtype_of(node, in_dtypes, table))
    return node


def _values(rng, shape, dtype, smooth):
    d = np.dtype(dtype)
    if d == np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if d.kind == "i":
        return np.array(rng.integers(-20, 21, shape), dtype=d)
    if smooth:
        return np.array(rng.uniform(-3, 3, shape), dtype=d)
    x = np.array(rng.standard_normal(shape) * 4, dtype=d)
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 0.5, -2.5, 1.0], dtype=d)
    m = np.asarray(rng.random(shape) < 0.15)
    x[m] = rng.choice(sp, int(m.sum()))
    x[np.asarray(rng.random(shape) < 0.3)] = rng.integers(-3, 4)   # exact ties and integers
    return x


def _uses_input(node) -> bool:
    return node[0] == "in" or any(isinstance(c, tuple) and _uses_input(c) for c in node[1:])


def _shape_of(node, in_shapes, in_dtypes):
    r = quiet(evaluate, node, [np.zeros(s, d) for s, d in zip(in_shapes, in_dtypes)], TJ_TABLE)
    return np.shape(r)


def _maybe_reduce(draw, tree, shape, ops):
    """Sometimes a reduction at the root, over one axis or all of them."""
    nd = len(shape)
    if draw(st.integers(0, 2)) != 0:
        return tree
    op = draw(st.sampled_from(ops))
    axis = draw(st.sampled_from([None] + list(range(-nd, nd))))
    if op in ("max", "min", "argmax", "argmin"):
        red = range(nd) if axis is None else [axis]
        assume(all(shape[a] > 0 for a in red))
    return ("reduce", op, axis, tree)


def _run(tree, arrays):
    return tj.kernel(lambda *xs: evaluate(tree, xs, TJ_TABLE))(*arrays)


# every name -> a callable that works on numpy arrays and on Tensors alike (same code runs
# the numpy reference and the trace); names shared by the tables mean the same function
TJ_TABLE = {**EXACT_UNARY, **EXACT_BINARY, **SMOOTH_UNARY, **SMOOTH_BINARY}


@st.composite
def exact_programs(draw):
    in_shapes = draw(shapes())
    in_dtypes = [draw(st.sampled_from(["float32", "int32", "float64", "bool", "int64", "float32"]))
                 for _ in in_shapes]
    tree = draw(trees(len(in_shapes), in_dtypes, EXACT_UNARY, EXACT_BINARY, True))
    assume(_uses_input(tree))
    tree = _maybe_reduce(draw, tree, _shape_of(tree, in_shapes, in_dtypes), EXACT_REDUCE)
    table = {**EXACT_UNARY, **EXACT_BINARY}
    assume(_dtype_of(tree, in_dtypes, table))
    return in_shapes, in_dtypes, tree, draw(st.integers(0, 2**32 - 1))


@st.composite
def smooth_programs(draw):
    in_shapes = draw(shapes())
    dt = draw(st.sampled_from(["float32", "float64"]))
    in_dtypes = [dt] * len(in_shapes)
    tree = draw(trees(len(in_shapes), in_dtypes, SMOOTH_UNARY, SMOOTH_BINARY, False))
    assume(_uses_input(tree))
    tree = _maybe_reduce(draw, tree, _shape_of(tree, in_shapes, in_dtypes), SMOOTH_REDUCE)
    return in_shapes, in_dtypes, tree, draw(st.integers(0, 2**32 - 1))


def _arrays(in_shapes, in_dtypes, seed, smooth):
    rng = np.random.default_rng(seed)
    return [_values(rng, s, d, smooth) for s, d in zip(in_shapes, in_dtypes)]


@SETTINGS
@given(exact_programs())
def test_exact_trees_match_numpy_bit_for_bit(prog):
    in_shapes, in_dtypes, tree, seed = prog
    xs = _arrays(in_shapes, in_dtypes, seed, smooth=False)
    is_float_sum = tree[0] == "reduce" and tree[1] == "sum" and \
        _dtype_of(tree, in_dtypes, TJ_TABLE) in ("float32", "float64")
    want = np.asarray(quiet(evaluate, tree, xs, TJ_TABLE))
    got = np.asarray(_run(tree, xs))
    assert got.dtype == want.dtype, f"{tree}: dtype {got.dtype}, numpy {want.dtype}"
    assert got.shape == want.shape, f"{tree}: shape {got.shape}, numpy {want.shape}"
    if is_float_sum:      # the order of additions differs from numpy's pairwise sum
        scale = np.nanmax(np.abs(np.where(np.isfinite(want), want, 0)), initial=1.0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale, equal_nan=True,
                                   err_msg=str(tree))
    else:
        np.testing.assert_array_equal(got, want, err_msg=str(tree))


@SETTINGS
@given(smooth_programs())
def test_smooth_trees_match_numpy_closely(prog):
    in_shapes, in_dtypes, tree, seed = prog
    xs = _arrays(in_shapes, in_dtypes, seed, smooth=True)
    track = [1.0]
    want = np.asarray(quiet(evaluate, tree, xs, TJ_TABLE, track))
    got = np.asarray(_run(tree, xs))
    assert got.dtype == want.dtype, f"{tree}: dtype {got.dtype}, numpy {want.dtype}"
    assert got.shape == want.shape
    # ulps of the narrowest float in the tree (a float32 tanh added to a float64 constant)
    e = max(np.finfo(d).eps for d in in_dtypes + ([want.dtype] if want.dtype.kind == "f" else []))
    n = max(1, int(np.prod([s for s in np.broadcast_shapes(*in_shapes)])))
    # each op is within a few ulp of numpy's; errors carry through at the scale of the
    # largest intermediate value (sums add n of them)
    atol = 256 * e * track[0] * (n if tree[0] == "reduce" else 1)
    if tree[0] == "reduce" and tree[1] in ("max", "min"):
        atol = 256 * e * track[0]
    np.testing.assert_allclose(got, want, rtol=256 * e, atol=atol, equal_nan=True, err_msg=str(tree))
