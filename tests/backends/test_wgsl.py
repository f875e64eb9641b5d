"""What the wgsl target adds beyond the op corpus (tests/targets runs the corpus on it):
64-bit arguments refused with a clear error, bool and scalar arguments at the boundary,
more rows than one dispatch dimension holds, the binding limit, explain, and the timing
API benchmarks use. Runs on lavapipe (a CPU Vulkan) where there is no GPU; without an
adapter these fail under TORSH_JIT_REQUIRE_RUNNERS=1 (CI) and skip otherwise."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit import errors as E
from torsh_jit.backends import wgsl as backend

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))
from target_configs import require_target  # noqa: E402


@pytest.fixture(autouse=True)
def wgsl_runs():
    require_target("wgsl")


def _softmax(x):
    e = tj.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_float64_argument_is_refused_with_the_callers_line():
    k = tj.kernel(lambda x: x * 2).to("wgsl")
    with pytest.raises(E.DTypeError) as err:
        k(np.ones(8))                                     # float64: the line named below
    msg = str(err.value)
    assert "float64" in msg and "wgsl" in msg and "float32" in msg
    assert "test_wgsl.py" in msg and "k(np.ones(8))" in msg


def test_bool_and_scalar_arguments(rng):
    x = rng.standard_normal(1001).astype(np.float32)
    m = rng.random(1001) > 0.5
    n = int(rng.integers(-5, 5))                          # a weak Python int

    def f(x, m, s, n, b):
        return tj.where(m, x * s, x + n), (x > s) & m, tj.logical_xor(m, b)
    got = tj.kernel(f).to("wgsl")(x, m, 0.25, n, True)
    want = (np.where(m, x * np.float32(0.25), x + np.float32(n)), (x > 0.25) & m, m ^ True)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_more_rows_than_one_dispatch_dimension(rng):
    """70000 rows: more workgroups than maxComputeWorkgroupsPerDimension (65535) on lavapipe;
    the kernel takes the rest in its grid-stride loop over rows."""
    x = rng.standard_normal((70000, 8)).astype(np.float32)
    got = tj.kernel(_softmax).to("wgsl")(x)
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(-1, keepdims=True), rtol=4e-6, atol=1e-7)


def test_too_many_bindings_is_a_clear_error(monkeypatch):
    wgpu_, adapter, dev, lim = backend._require()
    monkeypatch.setattr(backend, "_require", lambda: (wgpu_, adapter, dev,
                                                      {**lim, "max-storage-buffers-per-shader-stage": 2}))
    x = np.ones(16, np.float32)
    with pytest.raises(E.TargetError, match="binds at most 2 storage buffers"):
        tj.kernel(lambda a, b: a + b).to("wgsl")(x, x)


def test_explain_shows_the_wgsl_and_its_dispatch():
    x = np.ones((4, 300), np.float32)
    text = tj.kernel(_softmax).lower(x, target="wgsl").explain()
    assert "@compute @workgroup_size(" in text
    assert "var<workgroup>" in text                       # the row combines in workgroup memory
    assert "dispatch (" in text and "adapter:" in text


def test_timing_api(rng):
    x = rng.standard_normal((64, 1024)).astype(np.float32)
    k = tj.kernel(_softmax).to("wgsl")
    fn = k.built_variants(x)["wgsl"] or (k(x), k.built_variants(x)["wgsl"])[1]
    d = fn.upload(x)
    fn.launch(d, repeat=3)
    fn.sync()
    out, = fn.download(d)
    np.testing.assert_allclose(out, k.to("host")(x), rtol=4e-6, atol=1e-7)
    assert fn.time(d, repeat=2) > 0


def test_available_targets_lists_wgsl():
    assert "wgsl" in tj.available_targets()
