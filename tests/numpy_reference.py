"""References for results that numpy's own order of operations loses: imported by the tests
of every target (the tests folder is on sys.path through its conftest)."""
from __future__ import annotations

import numpy as np


def exact_prod(x, axis):
    """The product rounded once: mantissas and exponents kept apart (numpy's sequential
    product overflows or underflows on the way where the true product is finite)."""
    x = np.moveaxis(np.asarray(x, np.longdouble), axis, -1)
    out = np.empty(x.shape[:-1], np.longdouble)
    for idx in np.ndindex(out.shape):
        m, e = np.longdouble(1.0), 0
        for v in x[idx]:
            mv, ev = np.frexp(v)
            m, e2 = np.frexp(m * mv)
            e += int(ev) + int(e2)
        out[idx] = np.ldexp(m, e)
    return out


def wide_range_rows(rng, dtype, rows: int, n: int):
    """Rows alternating huge and tiny factors (signs random): partial products of the even
    and of the odd elements give inf and 0, the whole product is finite. The factors are
    2^u big or 2^u / big, u uniform in [-s, s] with s = 1 (factors in [0.5, 2]) for short
    rows and smaller for long ones, so that the whole product stays some 6 binades of 1."""
    big = 1e30 if np.dtype(dtype) == np.float32 else 1e250
    s = min(1.0, 6.0 / np.sqrt(n / 3))
    u = 2.0 ** rng.uniform(-s, s, (rows, n))
    x = u * np.where(np.arange(n) % 2 == 0, big, 1 / big)
    x *= rng.choice([-1.0, 1.0], x.shape)
    return x.astype(dtype)
