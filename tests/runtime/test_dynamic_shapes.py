"""Shape-polymorphic kernels on the host: compile counts over 100 batch sizes under each
dynamic= policy, the bounded specialisation table, the recompile log, guards, and symbolic
views; every result compared with numpy."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import torsh_jit as tj
import importlib

kernel_module = importlib.import_module("torsh_jit.kernel")

from dynamic_corpus import CASES, batch_sizes, check

IDS = [c[0] for c in CASES]


@pytest.fixture
def builds(monkeypatch):
    """How many functions the kernel layer built (each a trace, plan and build)."""
    count = {"n": 0}
    real = kernel_module.build

    def counting(p, *a, **kw):
        count["n"] += 1
        return real(p, *a, **kw)
    monkeypatch.setattr(kernel_module, "build", counting)
    return count


@pytest.mark.parametrize("dynamic,most", [("auto", 2), (True, 1)], ids=["auto", "true"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_hundred_batch_sizes_compile_at_most_twice(case, dynamic, most, rng, builds):
    """100 distinct batch sizes (0, 1, primes, sizes off every vector width and tile): at
    most 2 compiles with dynamic="auto" (the first call specialises, the second makes the
    batch symbolic), 1 with dynamic=True; every result is numpy's."""
    name, body, ref, make = case
    k = tj.kernel(body, dynamic=dynamic)
    for n in batch_sizes(100, rng):
        args = make(rng, n)
        check(f"{name} n={n}", np.asarray(k(*args)), ref(*args), args)
    assert k.compiles <= most and builds["n"] <= most, (k.compiles, builds["n"])


def test_exact_shapes_compile_per_size(rng, builds):
    k = tj.kernel(lambda x: x * 2 + 1, dynamic=False)
    for n in (3, 4, 5):
        x = rng.standard_normal((n, 8))
        np.testing.assert_array_equal(k(x), x * 2 + 1)
    assert k.compiles == 3


def test_named_axis_is_symbolic_and_shown(rng):
    """dynamic={0: "batch"}: axis 0 of every argument whose size matches is the symbol
    "batch"; the other axes stay exact; lower() and explain() show the symbol and guards."""
    k = tj.kernel(lambda x, b: x * b, dynamic={0: "batch"})
    for n in (5, 9, 1, 0, 33):
        x, b = rng.standard_normal((n, 7)), rng.standard_normal(7)
        np.testing.assert_array_equal(k(x, b), x * b)
    assert k.compiles == 1
    low = k.lower(rng.standard_normal((5, 7)), rng.standard_normal(7))
    assert low.plan.symbols == ("batch",)
    text = low.explain()
    assert "symbolic sizes: batch" in text and "guards:" in text
    assert "float64[batch,7]" in text
    # the row length is exact: another one compiles again
    x, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    np.testing.assert_array_equal(k(x, b), x * b)
    assert k.compiles == 2


def test_equal_sizes_share_a_symbol_and_a_call_that_breaks_it_recompiles(rng):
    """dynamic=True gives equal sizes one symbol (x and y of (n, 6)); a call where they
    differ (y broadcasts from size 1) fails the binding and compiles another variant."""
    k = tj.kernel(lambda x, y: x - y, dynamic=True)
    for n in (4, 11):
        x, y = rng.standard_normal((n, 6)), rng.standard_normal((n, 6))
        np.testing.assert_array_equal(k(x, y), x - y)
    assert k.compiles == 1
    x, y = rng.standard_normal((8, 6)), rng.standard_normal((1, 6))
    np.testing.assert_array_equal(k(x, y), x - y)
    assert k.compiles == 2


def test_symbolic_views_and_layouts(rng):
    """Slices with steps, transposes, reshapes and reductions over the symbolic axis. (A
    reshape through a transposed view asks whether an axis is 1: n = 2 would compile again.)"""
    k = tj.kernel(lambda x: (x[1:, ::2] * 2).T.reshape(-1) + 1, dynamic=True)
    for n in (5, 3, 17, 64):
        x = rng.standard_normal((n, 10))
        np.testing.assert_allclose(k(x), (x[1:, ::2] * 2).T.reshape(-1) + 1)
    assert k.compiles == 1
    t = tj.kernel(lambda x: x.sum(axis=1), dynamic=True)
    for n in (3, 40, 129):
        x = rng.standard_normal((n, 24)).T          # Fortran order: strides (1, 24)
        np.testing.assert_allclose(t(x), x.sum(axis=1), rtol=1e-12)
    assert t.compiles == 1


def test_symbolic_row_length_is_blocked_only_past_a_block(rng):
    """A row of symbolic length compiles unblocked up to a block (4096) under a guard, and a
    longer row compiles the blocked variant, whose float64 folds keep a float32 sum of 2^20
    elements of 0.1 within 2e-6 of the exact one (64 float32 lanes accumulating the whole
    row are 1.5e-4 off: each add rounds the same way). Column sums over a symbolic or odd column count (full units unmasked, the tail
    masked) match numpy at every size."""
    k = tj.kernel(lambda x: x.sum(axis=-1), dynamic=True)
    for K in (1, 100, 4096, 777):
        x = rng.random((3, K), dtype=np.float32)
        np.testing.assert_allclose(k(x), x.sum(-1, dtype=np.float64), rtol=2e-6)
    assert k.compiles == 1
    assert any("4096" in repr(g) for g in k.lower(rng.random((3, 100), dtype=np.float32)).plan.guards)
    x = rng.random((2, 4097), dtype=np.float32)
    np.testing.assert_allclose(k(x), x.sum(-1, dtype=np.float64), rtol=2e-6)
    x = np.full((2, 1 << 20), 0.1, np.float32)
    np.testing.assert_allclose(k(x), x.sum(-1, dtype=np.float64), rtol=2e-6)
    assert k.compiles == 2
    c = tj.kernel(lambda x: (x * 2).sum(axis=0), dynamic=True)
    for n, C in ((5, 1000), (64, 1000), (1, 1000), (3, 1000)):
        x = rng.standard_normal((n, C)).astype(np.float32)
        np.testing.assert_allclose(c(x), (x * 2).sum(0, dtype=np.float64), rtol=1e-5, atol=1e-5)
    assert c.compiles == 1
    for n, C in ((7, 255), (7, 257), (2, 16), (9, 3)):
        x = rng.standard_normal((n, C)).astype(np.float32)
        np.testing.assert_allclose(tj.kernel(lambda x: x.max(axis=0))(x), x.max(0))


def test_specialisation_table_is_bounded_lru(rng):
    k = tj.kernel(lambda x: x + 1, dynamic=False, max_specializations=2)
    xs = [rng.standard_normal(n) for n in (3, 4, 5)]
    for x in xs:
        np.testing.assert_array_equal(k(x), x + 1)
    assert len(k._table) == 2 and k.compiles == 3
    np.testing.assert_array_equal(k(xs[2]), xs[2] + 1)     # recent: still there
    assert k.compiles == 3
    np.testing.assert_array_equal(k(xs[0]), xs[0] + 1)     # least recently used: dropped
    assert k.compiles == 4


@pytest.mark.parametrize("bad", ["yes", 3, {0: "not a name"}, ("n", 5)])
def test_bad_dynamic_values_are_refused(bad):
    with pytest.raises(tj.ArgumentError, match="dynamic="):
        tj.kernel(lambda x: x, dynamic=bad)
    with pytest.raises(tj.ArgumentError, match="max_specializations"):
        tj.kernel(lambda x: x, max_specializations=0)


_LOG = """
import numpy as np, torsh_jit as tj
k = tj.kernel(lambda x: x.max(axis=1), dynamic=True)
k(np.ones((3, 5)))
k(np.ones((4, 7)))
try:
    k(np.ones((4, 0)))
except tj.ShapeError as e:
    print("refused:", e)
"""


def test_recompiles_log_names_the_failed_guard(tmp_path):
    """TORSH_JIT_LOG=recompiles: each compile is logged (logger torsh_jit) with its symbols
    and guards, and a call that fails a guard says which; the max over an empty axis then
    fails as numpy fails."""
    env = dict(os.environ, TORSH_JIT_LOG="recompiles", TORSH_JIT_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", _LOG], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "refused:" in r.stdout
    err = r.stderr
    assert err.count("torsh_jit: <lambda>: compiling for") == 2, err
    assert "symbols: s0, s1" in err and "guard s1 != 0 fails" in err, err


def test_graph_builder_takes_symbolic_dims(rng):
    """g.input(("n", 64)) and None dims: one compiled graph for every n; inputs that break
    a shared name are refused with what differs."""
    g = tj.Graph()
    x, w = g.input(("n", 64)), g.input((64,))
    y = g.input((None, 64))
    e = tj.exp(x - x.max(axis=-1, keepdims=True))
    g.output(e / e.sum(axis=-1, keepdims=True) * w, y[:, ::2].sum(axis=1))
    f = tj.compile(g)
    assert f.plan.symbols == ("n", "s1")
    for n, m in ((1, 3), (5, 0), (100, 7), (0, 2)):
        a, b, c = (rng.standard_normal(s).astype(np.float32) for s in ((n, 64), (64,), (m, 64)))
        got, got2 = f(a, b, c)
        ee = np.exp(a - a.max(-1, keepdims=True)) if n else a
        np.testing.assert_allclose(got, ee / ee.sum(-1, keepdims=True) * b, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got2, c[:, ::2].sum(axis=1), rtol=1e-5, atol=1e-5)
    with pytest.raises(tj.ShapeError, match="not a size"):
        g.input((2.5, 3))
    g2 = tj.Graph()
    a2, b2 = g2.input(("n", 8)), g2.input(("n", 8))
    g2.output(a2 - b2)
    f2 = tj.compile(g2)
    with pytest.raises(tj.ArgumentError, match="n = 3"):
        f2(np.zeros((3, 8), np.float32), np.zeros((4, 8), np.float32))


def test_sizes_used_as_values_specialise(rng):
    """x / x.shape[0], float(x.shape[1]): a size used as a number is that call's value (the
    axis stays exact), never a wrong number or a crash."""
    k = tj.kernel(lambda x: x.sum(axis=0) / x.shape[0] + float(x.shape[1]), dynamic=True)
    for n in (3, 4, 9):
        x = rng.standard_normal((n, 5))
        np.testing.assert_allclose(k(x), x.sum(0) / n + 5)
    assert k.compiles == 3
