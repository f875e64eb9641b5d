"""Reductions over a non-contiguous axis stream rows with vectors along the columns."""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.schedule.layout import plan_axes


CASES = [
    ("sum", lambda a: a.sum(axis=0)),
    ("mean_keepdims_centered", lambda a: a - a.mean(axis=0, keepdims=True)),
    ("max", lambda a: a.max(axis=0)),
    ("argmax", lambda a: a.argmax(axis=0)),
    ("variance", lambda a: ((a - a.mean(axis=0)) ** 2).mean(axis=0)),
    ("softmax_axis0", lambda a: np.exp(a - a.max(axis=0)) / np.exp(a - a.max(axis=0)).sum(axis=0)),
]


@pytest.mark.parametrize("name,f", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (513, 37), (64, 1031)])
def test_column_reduction_matches_numpy(name, f, shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    k = tj.kernel(f)
    got, want = k(x), f(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_axis0_uses_the_column_path_without_gathers(rng):
    x = rng.standard_normal((300, 200)).astype(np.float32)
    low = tj.kernel(lambda a: a.sum(axis=0)).lower(x)
    (g,) = low.groups
    assert plan_axes(g, columns=True).column and not plan_axes(g).column
    assert "column reduce" in low.source
    assert "gather" not in low.asm()


def test_middle_axis_of_3d_and_ints(rng):
    x = rng.standard_normal((3, 50, 70))
    np.testing.assert_allclose(tj.kernel(lambda a: np.exp(a).sum(axis=1))(x), np.exp(x).sum(axis=1),
                               rtol=1e-12)
    xi = rng.integers(-9, 9, (301, 33)).astype(np.int32)
    np.testing.assert_array_equal(tj.kernel(lambda a: a.sum(axis=0))(xi), xi.sum(axis=0))
    np.testing.assert_array_equal(tj.kernel(lambda a: a.argmin(axis=0))(xi), xi.argmin(axis=0))
