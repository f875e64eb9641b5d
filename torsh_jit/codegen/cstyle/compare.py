"""Comparisons numpy makes in a dtype the language lacks (float64, int64 on MSL and WGSL):
a weak Python number against an int32 or bool array, made by value in the array's dtype.
"""
from __future__ import annotations

import math

from ... import errors as E
from ...ir.dtypes import ITEMSIZE, family
from ...ir.ops import INT_LIMITS

# x OP c with c the other way round: c OP x is x SWAPPED[OP] c
SWAPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}
# an integer x against a number c by value: x < c is x < ceil(c), x <= c is x <= floor(c)...
INT_BOUND = {"lt": math.ceil, "ge": math.ceil, "le": math.floor, "gt": math.floor}
# x OP k for every x of an integer range: (k above the range, k below it)
OUTSIDE = {"lt": (True, False), "le": (True, False), "gt": (False, True), "ge": (False, True),
            "eq": (False, False), "ne": (True, True)}


def compare_by_value(em, e, vals: list[str], ct: str) -> str:
    """A comparison numpy makes in a dtype this language lacks (float64, int64): a weak
    Python number against an int32 or bool array (x_int32 > 0.5, x == 2**31, b == 1).
    numpy compares such a number by value, so against a constant the comparison becomes
    one in the array's own dtype with an integer bound (x > 0.5 is x > 0; x < 2**31 is
    true everywhere; x == nan is false everywhere)."""
    args = [em.g.exprs[a] for a in e.args]
    consts = [i for i, x in enumerate(args) if x.op == "const"]
    if len(consts) == 2:      # not folded: numpy's own answer
        import numpy as np
        with np.errstate(all="ignore"):
            got = getattr(np, {"lt": "less", "le": "less_equal", "gt": "greater",
                               "ge": "greater_equal", "eq": "equal", "ne": "not_equal"}[e.op])(
                *(dict(x.attrs)["value"] for x in args))
        return em.L.literal(bool(got), "bool")
    if len(consts) == 1:
        j = consts[0]
        op = e.op if j == 1 else SWAPPED[e.op]
        x, xv, c = args[1 - j], vals[1 - j], dict(args[j].attrs)["value"]
        if family(x.dtype) == "f":
            # a Python float argument, held in this float dtype: numbers meet it there
            return em.compare(op, x.dtype, xv, em.L.literal(c, x.dtype))
        lo, hi = (0, 1) if x.dtype == "bool" else INT_LIMITS[x.dtype]
        dt = "int32" if x.dtype == "bool" else x.dtype
        if isinstance(c, float) and math.isnan(c):
            return em.L.literal(op == "ne", "bool")
        if isinstance(c, float) and not math.isinf(c):
            if op in INT_BOUND:
                c = INT_BOUND[op](c)
            elif c != math.floor(c):          # == a non-integer: never
                return em.L.literal(op == "ne", "bool")
            else:
                c = int(c)
        if not lo <= c <= hi:
            return em.L.literal(OUTSIDE[op][c < lo], "bool")
        return em.compare(op, dt, em.L.cast(xv, x.dtype, dt), em.L.literal(int(c), dt))
    # a Python number passed as an argument: its value is known at run time only
    fam = family(ct)
    held = [x.dtype for x in args if family(x.dtype) == fam and em.L.holds(x.dtype)]
    if held and (fam == "i" or all(family(x.dtype) == "f" for x in args)):
        # ints: the argument arrives as an int32 (out-of-range values are refused on the way
        # in); floats: both sides are Python floats, which this target holds as float32
        dt = max(held, key=lambda d: ITEMSIZE[d])
        conv = [em.L.cast(v, x.dtype, dt) for v, x in zip(vals, args)]
        return em.compare(e.op, dt, *conv)
    kinds = " and ".join(sorted({x.dtype for x in args}))
    raise E.DTypeError(
        f"comparing {kinds} values needs {ct} (numpy compares a Python float with an "
        f"integer or bool array exactly, in {ct}), which {em.L.name} targets do not have",
        hint="write the number into the kernel as a constant (x > 0.5 is compared exactly), "
             "or convert a side first: x.astype(np.float32) > s compares in float32")
