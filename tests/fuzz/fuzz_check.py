"""Running one fuzz program both ways (numpy, torsh-jit) and judging the difference.

- numpy raises -> torsh-jit must raise a TorshJitError that is not an InternalError.
- numpy succeeds -> torsh-jit must return the same number of outputs, each with numpy's
  dtype and shape; ints and bools exactly, floats within a tolerance. An
  UnsupportedOpError or DTypeError (a feature or dtype torsh-jit does not implement) is
  counted, not failed; any other exception fails.
- A float outside the tolerance is re-checked against the program run in higher
  precision (float32 inputs as float64, float64 inputs as long double): it fails only if
  torsh-jit is further from that than numpy is, by more than the tolerance. Exact outputs
  computed from inexact floats (argmax of exp, a floor of a sum) get the same re-check,
  and in programs where a discontinuous op reads an inexact value a single flipped
  element (a value one ulp from a rounding boundary) is let through.
"""
from __future__ import annotations

import re
import warnings
from collections import Counter

import numpy as np

import torsh_jit as tj
from torsh_jit import errors as E

# (target, outcome) -> count; the conftest prints it at the end of the session
STATS: Counter = Counter()
SEED = 0                  # the session seed (set by conftest.py)
UNSUPPORTED = (E.UnsupportedOpError, E.DTypeError)


def _quiet(fn, *a):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*a)


def _as_tuple(r, prog):
    return tuple(r) if prog.tuple_out or len(prog.outputs) > 1 else (r,)


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def run_numpy(prog, args):
    """(exception or None, tuple of outputs) of the program under numpy."""
    try:
        r = _quiet(prog.function(), *[_copy(a) for a in args])
    except Exception as e:             # noqa: BLE001 - what numpy raises is the expected outcome
        return e, None
    return None, _as_tuple(r, prog)


def run_precise(prog, args):
    """The program with float inputs widened: the reference numpy's rounding is judged by."""
    def widen(a):
        if isinstance(a, np.ndarray) and a.dtype == np.float32:
            return a.astype(np.float64)
        if isinstance(a, np.ndarray) and a.dtype == np.float64:
            return a.astype(np.longdouble)
        return a
    exc, out = run_numpy(prog, [widen(a) for a in args])
    return None if exc else out


def _short(err: Exception) -> str:
    """The error's kind and first line, with the place and the numbers taken out, so one
    unsupported feature counts as one entry."""
    msg = str(err.message if isinstance(err, E.TorshJitError) else err).splitlines()[0]
    msg = re.sub(r"<fuzz-[0-9a-f]+>:\d+: ", "", msg)
    msg = re.sub(r"\d+", "N", msg)
    return f"{type(err).__name__}: {msg[:110]}"


def _sentinel(dtype):
    d = np.dtype(dtype)
    return True if d == np.bool_ else (-12345 if d.kind == "i" else 1234.5)


class Mismatch(AssertionError):
    pass


def _fail(prog, what):
    raise Mismatch(f"{what}\n--- repro ({prog.target}) ---\n{prog.repro()}\n")


def tolerance(prog, dtype):
    """rtol for a float output: per op a little, more the more ops there are; sums and
    matmuls add up to red_n terms, so their absolute error grows with sqrt(red_n) times
    the terms' size (the caller scales atol by the largest value in the program)."""
    # a float64 output computed from float32 values (f32 @ f32, then @ an int array) carries
    # float32 rounding, which numpy and torsh-jit may make differently (FMA, order)
    f32_inside = any(getattr(p, "dtype", None) == "float32" for p in prog.params) or \
        any("float32" in expr for _, expr in prog.stmts)
    base = 1e-5 if np.dtype(dtype) == np.float32 or f32_inside else 1e-12
    rtol = base * max(1, prog.n_ops)
    return rtol, rtol * max(1.0, float(prog.red_n)) ** 0.5


def _scale(prog, args):
    """The largest finite magnitude of any float value the program computes."""
    env = {p.name: _copy(a) for p, a in zip(prog.params, args)}
    m = 1.0
    for v in env.values():
        m = max(m, _maxabs(v))
    from fuzz_programs import _quiet_eval
    for name, expr in prog.stmts:
        try:
            env[name] = _quiet_eval(expr, env)
        except Exception:              # noqa: BLE001
            break
        m = max(m, _maxabs(env[name]))
    return m


def _maxabs(v):
    a = np.asarray(v)
    if a.dtype.kind != "f" or not a.size:
        return 0.0
    with np.errstate(all="ignore"):
        fin = np.abs(a[np.isfinite(a)])
    return float(fin.max()) if fin.size else 0.0


def _dist(x, ref):
    """|x - ref| elementwise in long double, 0 where equal (inf == inf, nan == nan)."""
    x = np.asarray(x, np.longdouble)
    ref = np.asarray(ref, np.longdouble)
    with np.errstate(all="ignore"):
        d = np.abs(x - ref)
    same = (x == ref) | (np.isnan(x) & np.isnan(ref))
    return np.where(same, 0, np.where(np.isnan(d), np.inf, d))


def compare_output(prog, i, got, want, precise, scale):
    got_a, want_a = np.asarray(got), np.asarray(want)
    if not isinstance(got, (np.ndarray, np.generic)):
        _fail(prog, f"output {i}: torsh-jit returned {type(got).__name__}, numpy {type(want).__name__}")
    if got_a.dtype != want_a.dtype:
        _fail(prog, f"output {i}: dtype {got_a.dtype}, numpy {want_a.dtype}")
    if got_a.shape != want_a.shape:
        _fail(prog, f"output {i}: shape {got_a.shape}, numpy {want_a.shape}")
    if not want_a.size:
        return
    if want_a.dtype.kind == "f":
        rtol, arel = tolerance(prog, want_a.dtype)
        atol = arel * scale
        with np.errstate(all="ignore"):
            bad = ~np.isclose(got_a, want_a, rtol=rtol, atol=atol, equal_nan=True)
    else:
        rtol = atol = 0.0
        bad = got_a != want_a
    if not bad.any():
        return
    hp = None
    if precise is not None and i < len(precise):
        hp = np.asarray(precise[i])
        if hp.shape != want_a.shape:
            hp = None
    still = bad.copy()
    if hp is not None:
        if want_a.dtype.kind == "f":
            d_tj, d_np = _dist(got_a, hp), _dist(want_a, hp)
            nan_hp = np.isnan(hp.astype(np.longdouble))
            # numpy off by more than torsh-jit: torsh-jit is at least as right
            ok = d_tj <= d_np + atol + rtol * np.abs(np.where(nan_hp, 0, hp.astype(np.longdouble)))
            ok |= nan_hp & ~np.isnan(want_a)          # both disagree with an undefined value
            still = bad & ~ok
        else:
            hp_v = hp.astype(want_a.dtype) if hp.dtype != want_a.dtype and want_a.dtype != np.bool_ else hp
            still = bad & ~((got_a == hp_v) | (want_a != hp_v))
    n_bad = int(still.sum())
    if n_bad == 0 or prog.fragile and n_bad <= max(1, want_a.size // 100):
        return
    idx = np.argwhere(still)[:5]
    rows = []
    for ix in idx:
        t = tuple(int(k) for k in ix)
        rows.append(f"  at {t}: torsh-jit {got_a[t]!r}, numpy {want_a[t]!r}"
                    + (f", high precision {hp[t]!r}" if hp is not None else ""))
    _fail(prog, f"output {i} ({want_a.dtype}{want_a.shape}): {n_bad} of {want_a.size} elements "
                f"differ (rtol={rtol:g}, atol={atol:g})\n" + "\n".join(rows))


def kernel_for(prog):
    fn = prog.function()
    return tj.kernel(fn) if prog.target == "host" else tj.kernel(fn, target=prog.target)


def check(prog):
    """Run prog both ways; raise Mismatch (with a repro) when torsh-jit is wrong."""
    target = prog.target
    args = prog.args()
    np_exc, want = run_numpy(prog, args)
    call_args = [_copy(a) for a in args]
    bufs = None
    try:
        k = kernel_for(prog)
        if prog.use_out and np_exc is None:
            bufs = []
            for j, w in enumerate(want):
                w = np.asarray(w)
                if j in prog.out_alias:
                    bufs.append(call_args[prog.out_alias[j]])
                else:
                    bufs.append(np.full(w.shape, _sentinel(w.dtype), w.dtype))
            got = k(*call_args, out=bufs[0] if len(bufs) == 1 and not prog.tuple_out else tuple(bufs))
        else:
            got = k(*call_args)
    except E.InternalError as e:
        STATS[(target, "FAIL internal error")] += 1
        _fail(prog, f"torsh-jit raised {_short(e)}"
                    + (f"\n(numpy raised {type(np_exc).__name__}: {np_exc})" if np_exc else "")
                    + f"\nfull message: {e}")
    except E.TorshJitError as e:
        if np_exc is not None:
            STATS[(target, "both raised")] += 1
            return
        if isinstance(e, UNSUPPORTED):
            STATS[(target, "unsupported: " + _short(e))] += 1
            return
        STATS[(target, "FAIL rejected")] += 1
        _fail(prog, f"numpy accepts the program, torsh-jit raised {type(e).__name__}: {e}")
    except Mismatch:
        raise
    except Exception as e:             # noqa: BLE001 - any other exception is a bug
        STATS[(target, "FAIL foreign exception")] += 1
        _fail(prog, f"torsh-jit raised a non-TorshJitError {type(e).__name__}: {e}"
                    + (f"\n(numpy raised {type(np_exc).__name__}: {np_exc})" if np_exc else ""))
    if np_exc is not None:
        STATS[(target, "FAIL no error")] += 1
        _fail(prog, f"numpy raises {type(np_exc).__name__}: {np_exc}\ntorsh-jit returned instead: {got!r}")
    got_t = _as_tuple(got, prog)
    try:
        if len(got_t) != len(want):
            _fail(prog, f"{len(got_t)} outputs, numpy {len(want)}")
        if bufs is not None:
            for j, (g, b) in enumerate(zip(got_t, bufs)):
                if g is not b:
                    _fail(prog, f"out=: output {j} is not the buffer passed in")
        precise = None
        scale = None
        for j, (g, w) in enumerate(zip(got_t, want)):
            if precise is None:
                precise = run_precise(prog, args) or ()
                scale = _scale(prog, args)
            compare_output(prog, j, g, w, precise or None, scale)
    except Mismatch:
        STATS[(target, "FAIL mismatch")] += 1
        raise
    STATS[(target, "ok")] += 1


def summary() -> str:
    targets = sorted({t for t, _ in STATS})
    parts = []
    for t in targets:
        items = {o: n for (tt, o), n in STATS.items() if tt == t}
        unsup = sum(n for o, n in items.items() if o.startswith("unsupported"))
        total = sum(items.values())
        fails = {o: n for o, n in items.items() if o.startswith("FAIL")}
        parts.append(f"{t}: {total} programs, {items.get('ok', 0)} ok, "
                     f"{items.get('both raised', 0)} rejected by both, {unsup} unsupported"
                     + "".join(f", {n} {o}" for o, n in sorted(fails.items())))
    return "; ".join(parts)


def unsupported_kinds() -> list[str]:
    c = Counter()
    for (t, o), n in STATS.items():
        if o.startswith("unsupported: "):
            c[f"[{t}] {o[len('unsupported: '):]}"] += n
    return [f"{n:5d}  {k}" for k, n in c.most_common()]
