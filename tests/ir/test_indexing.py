"""Indexing inside kernels: basic indices (ints, slices, None, ...) match numpy; advanced
indices (boolean masks, integer arrays, traced values) are refused with an error that
names the user's line and says what works instead."""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj

BASIC = [lambda x: x[None, ..., 1], lambda x: x[..., 1:3], lambda x: x[1, ..., None],
         lambda x: x[np.newaxis, -1, ::-2], lambda x: x[np.array(2)], lambda x: x[np.int64(-1), ...],
         lambda x: x[...]]


@pytest.mark.parametrize("k", range(len(BASIC)))
def test_basic_indices_match_numpy(k, rng):
    x = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(tj.kernel(BASIC[k])(x), BASIC[k](x))


@pytest.mark.parametrize("fn,part,hint", [
    (lambda x: x[x > 0], "boolean mask indexing", "tj.where(mask, x, 0)"),
    (lambda x: x[np.array([True, False, True, True])], "boolean mask indexing", "np.where"),
    (lambda x: x[:, x[0] > 0], "boolean mask indexing", "tj.where"),
    (lambda x: x[np.array([0, 2])], "integer-array indexing", "basic slices"),
    (lambda x: x[[0, 2]], "integer-array indexing", "x[0:3:2]"),
    (lambda x: x[..., [1, 2]], "integer-array indexing", "basic slices"),
    (lambda x: x[np.argmax(x[:, 0])], "computed inside the kernel", "tj.where"),
    (lambda x: x[None, (x[0, 0] > 0).astype(np.int32)], "computed inside the kernel", "slices"),
])
def test_advanced_indices_say_what_works(fn, part, hint, rng):
    x = rng.standard_normal((4, 4))
    with pytest.raises(tj.UnsupportedOpError) as e:
        tj.kernel(fn)(x)
    text = str(e.value)
    assert part in text and hint in e.value.hint, text
    assert "test_indexing.py:" in text and "lambda x: x[" in text, text
