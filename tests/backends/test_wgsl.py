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
from torsh_jit.backends.wgsl import device

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


def test_python_numbers_compare_by_value_without_64_bit_types(rng):
    """numpy compares x_int32 with 0.5 in float64 and with 2**31 by value; WGSL has neither
    type, and the comparison is made by value in i32 (it was a KeyError)."""
    x = rng.integers(-2**31, 2**31, 513, dtype=np.int64).astype(np.int32)
    x[:6] = [0, 1, -1, 2**31 - 1, -2**31, 16777217]
    a = rng.standard_normal(513).astype(np.float32)
    a[:4] = [np.nan, np.inf, -0.0, 0.5]

    def f(x, a):
        return (np.where(a > 0.5, a, 0), a == np.nan, x != 2**31, x == 2**31, x < 2**31,
                x >= -2**31 - 1, x > 0.5, x <= -0.5, x == 16777217.0, 2.5 < x, x != np.nan)
    got = tj.kernel(f).to("wgsl")(x, a)
    for g, w in zip(got, f(x, a)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_bools_are_ordered_as_numpy_orders_them(rng):
    """False < True; WGSL has no ordering on bool (wgpu rejected b < c)."""
    b, c = rng.random(301) < 0.5, rng.random(301) < 0.5

    def f(b, c):
        return b > b, b < c, b <= c, b > c, b >= c, b == c, b != c, b == 1, b > 0.5
    got = tj.kernel(f).to("wgsl")(b, c)
    for g, w in zip(got, f(b, c)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_int_array_against_a_python_float_argument_is_a_clear_error():
    """x_int32 > s compares in float64 in numpy; s arrives here as a float32: refused, saying
    what works (a constant in the kernel is compared exactly)."""
    k = tj.kernel(lambda x, s: x > s).to("wgsl")
    with pytest.raises(E.DTypeError) as err:
        k(np.arange(8, dtype=np.int32), 0.5)
    assert "float64" in str(err.value) and "wgsl" in str(err.value) and "constant" in err.value.hint


def test_python_int_argument_compared_beyond_int32_is_refused_not_wrapped(rng):
    """numpy compares x_int32 < n by value for any Python int n; WGSL compares in i32, where
    2**31 would wrap to -2**31 (all False instead of all True): refused, in-range values run."""
    x = rng.integers(-1000, 1000, 65).astype(np.int32)
    k = tj.kernel(lambda x, n: (x < n, x == n)).to("wgsl")
    for n in (0, 7, -2**31, 2**31 - 1):
        for g, w in zip(k(x, n), (x < n, x == n)):
            np.testing.assert_array_equal(g, w)
    for n in (2**31, -2**31 - 1, 2**40):
        with pytest.raises(E.ArgumentError, match="out of bounds for int32.*wgsl"):
            k(x, n)


def test_more_rows_than_one_dispatch_dimension(rng):
    """70000 rows: more workgroups than maxComputeWorkgroupsPerDimension (65535) on lavapipe;
    the kernel takes the rest in its grid-stride loop over rows."""
    x = rng.standard_normal((70000, 8)).astype(np.float32)
    got = tj.kernel(_softmax).to("wgsl")(x)
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(-1, keepdims=True), rtol=4e-6, atol=1e-7)


def test_too_many_bindings_is_a_clear_error(monkeypatch):
    wgpu_, adapter, dev, lim = device.require_gpu()
    monkeypatch.setattr(device, "require_gpu", lambda: (wgpu_, adapter, dev,
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


@pytest.mark.parametrize("subgroups", [True, False], ids=["subgroups", "workgroup-tree"])
def test_rows_combine_by_subgroups_and_by_tree(subgroups, monkeypatch, rng):
    """Both ways a row's threads combine (bools through workgroup memory as u32, arg
    reductions, several passes, rows kept in registers), and a one-pass reduction over more
    rows than one dispatch holds (the grid-stride loop reuses workgroup memory)."""
    if subgroups and "subgroup" not in device.require_gpu()[2].features:
        pytest.skip("this adapter has no subgroup operations")
    monkeypatch.setattr(device, "SUBGROUPS", subgroups)
    from op_corpus import _reductions, check, reference
    case = _reductions(int_sum=False)
    args = case.make(rng)
    check(case, tj.kernel(case.fn(tj)).to("wgsl")(*args), reference(case.fn, args))
    x = rng.standard_normal((70000, 64)).astype(np.float32)
    got = tj.kernel(lambda x: (x.sum(axis=-1), (x > 2.5).any(axis=-1))).to("wgsl")(x)
    np.testing.assert_allclose(got[0], x.sum(-1), rtol=2e-6, atol=1e-5)
    np.testing.assert_array_equal(got[1], (x > 2.5).any(-1))
    src = tj.kernel(_softmax).lower(x[:4, :1024], target="wgsl").source
    assert ("subgroupShuffleXor" in src) == subgroups


@pytest.mark.parametrize("subgroups", [True, False], ids=["subgroups", "workgroup-tree"])
def test_float_prod_pairs_cross_subgroups_and_the_tree(subgroups, monkeypatch, rng):
    """Issue 14: a float prod's (mantissa, exponent) partials combine by subgroup shuffles
    and through workgroup memory: rows alternating huge and tiny factors (partials of inf and
    0 gave NaN) match the exact product, in a workgroup per row and a thread per column."""
    if subgroups and "subgroup" not in device.require_gpu()[2].features:
        pytest.skip("this adapter has no subgroup operations")
    monkeypatch.setattr(device, "SUBGROUPS", subgroups)
    from numpy_reference import exact_prod, wide_range_rows
    x = wide_range_rows(rng, np.float32, 5, 4096)
    f = tj.kernel(lambda x, xt: (x.prod(axis=1), xt.prod(axis=0)))
    rows, cols = f.to("wgsl")(x, np.ascontiguousarray(x.T))
    want = exact_prod(x, 1).astype(np.float32)
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(rows, want, rtol=1e-4)
    np.testing.assert_allclose(cols, want, rtol=1e-4)
    src = f.lower(x, np.ascontiguousarray(x.T), target="wgsl").source
    assert ("subgroupShuffleXor(ae" in src) == subgroups


def test_integer_division_every_sign():
    """// and % for every sign pair, exact divisions included (naga's % is OpSRem, which
    Vulkan leaves undefined for negative operands: the prelude does not use it)."""
    a = np.repeat(np.arange(-40, 41, dtype=np.int32), 31)
    b = np.tile(np.arange(-15, 16, dtype=np.int32), 81)
    a = np.r_[a, np.int32([-2**31, -2**31, 2**31 - 1, -2**31 + 1])]
    b = np.r_[b, np.int32([-1, 7, -1, 2**31 - 1])]
    q, r = tj.kernel(lambda a, b: (a // b, a % b)).to("wgsl")(a, b)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(q, a // b)
        np.testing.assert_array_equal(r, a % b)



def _same_floats(got, want):
    """NaN where numpy has NaN, the same infinities and signed zeros, and other values within
    3 ulp: Vulkan allows float32 division 2.5 ulp, and NVIDIA's driver uses it (lavapipe
    divides exactly)."""
    got, want = np.asarray(got), np.asarray(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    edge = np.isinf(want) | (want == 0)
    np.testing.assert_array_equal(got[edge], want[edge])
    num = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[num]), np.signbit(want[num]))
    np.testing.assert_allclose(got[num & ~edge], want[num & ~edge], rtol=3 * 2.0 ** -23)


@pytest.mark.parametrize("divisor", ["constant zero", "array with signed zeros"])
def test_division_by_zero_gives_numpys_infinities_and_nans(divisor, rng):
    """WGSL leaves x / 0 to the implementation: lavapipe gave 0.0 for (a + 1) / 0 and for
    the mean of an empty array (found by CI's differential fuzzer); the prelude's tj_div
    gives IEEE's +-inf and NaN, as numpy does."""
    a = rng.standard_normal(1003).astype(np.float32)
    a[rng.integers(0, a.size, 40)] = rng.choice(np.float32([0.0, -0.0, np.nan, np.inf, -np.inf]), 40)
    if divisor == "constant zero":
        fn = lambda a, z: (a + 1) / 0      # noqa: E731
    else:
        fn = lambda a, z: a / z            # noqa: E731
    z = np.where(rng.random(a.size) < 0.5, np.float32(0.0), np.float32(-0.0)).astype(np.float32)
    z[rng.random(a.size) < 0.2] = rng.standard_normal(1).astype(np.float32)[0]
    with np.errstate(all="ignore"):
        want = fn(a, z)
    _same_floats(tj.kernel(fn).to("wgsl")(a, z), want)


@pytest.mark.parametrize("fn,x", [(np.log1p, -np.inf), (np.expm1, -0.0), (np.sin, -0.0),
                                  (np.tan, -0.0), (tj.erf, -0.0)],
                         ids=["log1p(-inf)", "expm1(-0.0)", "sin(-0.0)", "tan(-0.0)", "erf(-0.0)"])
def test_issue_21_special_values(fn, x, rng):
    """lavapipe gave log1p(-inf) = -inf (numpy: NaN) and +0.0 for expm1, sin, tan and erf of
    -0.0 (numpy keeps -0.0); among ordinary values, which must stay as they were."""
    a = rng.standard_normal(64).astype(np.float32) * 0.5
    a[rng.integers(0, 64, 8)] = np.float32(x)
    with np.errstate(all="ignore"):
        want = np.log1p(a) if fn is np.log1p else None
    got = tj.kernel(fn).to("wgsl")(a)
    special = a == np.float32(x) if not np.isinf(x) else np.isinf(a)
    if fn is np.log1p:
        assert np.isnan(got[special]).all()
        np.testing.assert_allclose(got[~special], want[~special], rtol=4e-7)
    else:
        assert (got[special] == 0).all() and np.signbit(got[special]).all()


def test_mean_of_an_empty_array_is_nan():
    a = np.zeros(0, np.float32)
    got = tj.kernel(lambda a: np.mean(a)).to("wgsl")(a)
    assert np.isnan(got)


def test_rsqrt_of_zero_is_infinite(rng):
    a = np.abs(rng.standard_normal(257).astype(np.float32))
    a[::5] = 0.0
    a[1::5] = -0.0
    with np.errstate(all="ignore"):
        want = (1 / np.sqrt(a)).astype(np.float32)
    _same_floats(tj.kernel(lambda a: tj.rsqrt(a)).to("wgsl")(a), want)

# the largest error, in float32 ulps against numpy's float64 rounded, seen over 2^22 arguments
# (benchmarks/wgsl_diag.py --only math): tests allow one more
MATH_ULP = {"exp": 2, "exp2": 2, "expm1": 2, "tanh": 2, "sigmoid": 3, "sin": 2, "cos": 2, "tan": 4,
            "log": 1, "log2": 2, "log1p": 2}


@pytest.mark.parametrize("name", sorted(MATH_ULP))
def test_math_within_a_few_ulp(name, rng):
    x = np.concatenate([rng.uniform(-100, 100, 1 << 15), rng.standard_normal(1 << 15),
                        rng.standard_normal(1 << 12) * 1e-3, rng.uniform(-8000, 8000, 1 << 12),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, 88.5, -104.0, 1e10]]).astype(np.float32)
    if name.startswith("log"):
        x = np.abs(x)
    ref = (lambda v: 1 / (1 + np.exp(-v))) if name == "sigmoid" else getattr(np, name)
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64)).astype(np.float32)
    got = tj.kernel(getattr(tj, name)).to("wgsl")(x)
    normal = ~(np.abs(want) < np.finfo(np.float32).tiny) | (want == 0)
    ulps = np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32).astype(np.int64))
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    bad = ~same & normal & ((np.sign(got) != np.sign(want)) | (ulps > MATH_ULP[name] + 1))
    assert not bad.any(), f"{name}: {x[bad][:5]} -> {got[bad][:5]}, numpy {want[bad][:5]}"


@pytest.mark.parametrize("unroll", [1, 3, 4])
def test_elementwise_groups_per_thread(unroll, rng):
    """unroll=U: a thread takes U groups per step (loads first), the last step partial, rows
    with and without a tail of fewer than 4 elements."""
    from torsh_jit import compiler
    for shape in ((100003,), (37, 1003), (64, 4096)):
        x = rng.standard_normal(shape).astype(np.float32)
        r = rng.standard_normal(shape[-1]).astype(np.float32)
        args = (x, r)
        k = tj.kernel(lambda x, r: (tj.exp(x) * r - x, x > r)).to("wgsl")
        specs = k.specs_of(args)
        p0, single = k._plan(specs)
        p = compiler.plan(p0.graph, specs, p0.target, configs=(p0.configs[0].replace(unroll=unroll),))
        assert f"{unroll} per thread per step" in compiler.build(p).source
        got = compiler.build(p).call(args, None, single)
        np.testing.assert_allclose(got[0], np.exp(x) * r - x, rtol=4e-6, atol=1e-6)
        np.testing.assert_array_equal(got[1], x > r)
