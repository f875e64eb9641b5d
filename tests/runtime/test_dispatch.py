"""Targets as values, host detection, and every x86 level executing here."""
from __future__ import annotations

import re

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.errors import TargetError
from torsh_jit.runtime import hardware

X86 = ["x86_64-sse42", "x86_64-avx2", "x86_64-avx512"]


def test_target_names_round_trip():
    for name in tj.targets():
        t = tj.parse_target(name)
        assert t.name == name and str(t) == name and tj.parse_target(str(t)) == t
        assert hash(t) == hash(tj.parse_target(name))


def test_the_stored_target_table_is_the_parsed_one(tmp_path, monkeypatch):
    """known_targets reads the TOML tables from the store (cache/memo.py) once they are
    there: the same Targets as parsing the files, field for field."""
    from torsh_jit import target as T
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TORSH_JIT_CACHE", raising=False)
    parsed = T._parse_files()
    assert T._tables() == parsed                     # parsed, stored
    assert list((tmp_path / "v1" / "targets").rglob("*.tjc"))
    monkeypatch.setattr(T, "_parse_files", lambda: pytest.fail("parsed again"))
    assert T._tables() == parsed                     # read back
    try:
        T.known_targets.clear()
        fresh = [T._target(d) for d in parsed]
        got = T.known_targets()
        assert list(got) == [t.name for t in fresh]
        assert [vars(t) for t in got.values()] == [vars(t) for t in fresh]
    finally:
        T.known_targets.clear()


def test_unknown_target_lists_known_and_closest():
    with pytest.raises(TargetError) as e:
        tj.parse_target("x86_64-avx3")
    msg = str(e.value)
    assert "x86_64-avx2" in msg and "did you mean" in msg
    for name in X86:
        assert name in msg


def test_host_is_best_native_and_available_is_ranked():
    avail = tj.available_targets()
    assert avail and avail[0] == tj.parse_target("host").name
    ranks = [tj.parse_target(n).rank for n in avail]
    assert ranks == sorted(ranks, reverse=True)


def test_masked_features_pick_a_lower_level(monkeypatch):
    if "x86_64-avx512" not in tj.available_targets():
        pytest.skip("this CPU has no AVX-512 to mask")
    monkeypatch.setenv("TORSH_JIT_CPU_FEATURES", "-avx512f")
    assert hardware.host_target().name == "x86_64-avx2"
    monkeypatch.setenv("TORSH_JIT_CPU_FEATURES", "-avx512f,-avx2")
    assert hardware.host_target().name == "x86_64-sse42"
    assert "x86_64-avx512" not in tj.available_targets()


def softmax_chain(x, y):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True) * y + np.sin(y) * 0.5


@pytest.mark.parametrize("level", X86)
def test_each_level_runs_here_and_matches_numpy(level, rng):
    if level not in tj.available_targets():
        pytest.skip(f"{level} cannot run on this CPU")
    x = rng.standard_normal((33, 257)).astype(np.float32)
    y = rng.standard_normal(257).astype(np.float32)
    k = tj.kernel(softmax_chain).to(level)
    np.testing.assert_allclose(k(x, y), softmax_chain(x, y), rtol=2e-6, atol=2e-6)
    a = rng.standard_normal((67, 45)).astype(np.float32)
    b = rng.standard_normal((45, 71)).astype(np.float32)
    mm = tj.kernel(lambda a, b: np.maximum(a @ b, 0)).to(level)
    np.testing.assert_allclose(mm(a, b), np.maximum(a @ b, 0), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("level,reg,absent", [("x86_64-avx512", "zmm", None),
                                              ("x86_64-avx2", "ymm", "zmm"),
                                              ("x86_64-sse42", "xmm", "ymm")])
def test_emitted_vector_width_matches_the_level(level, reg, absent, rng):
    x = rng.standard_normal(1000).astype(np.float32)
    asm = tj.kernel(lambda a: a * 2.0 + 1.0).lower(x, target=level).asm()
    assert re.search(rf"%{reg}\d+", asm), f"no {reg} registers in {level} code"
    if absent:
        assert not re.search(rf"%{absent}\d+", asm), f"{absent} registers in {level} code"


def test_multi_versioned_kernel_keeps_every_variant_and_runs_the_best(rng, monkeypatch):
    levels = [t for t in X86 if t in tj.available_targets()]
    if len(levels) < 2:
        pytest.skip("needs two x86 levels that run here")

    def f(a, b):
        return np.exp(a) * b - np.tanh(a)

    x, y = (rng.standard_normal(4099).astype(np.float32) for _ in range(2))
    k = tj.kernel(f, target=list(reversed(levels)))
    np.testing.assert_allclose(k(x, y), f(x, y), rtol=2e-6, atol=2e-6)
    assert k.target.name == levels[-1]                    # the best level this CPU runs
    built = k.built_variants(x, y)
    assert set(built) == set(levels) and all(v is not None for v in built.values())
    for name, fn in built.items():                        # each kept variant computes the same
        out = np.empty_like(x)
        fn.run((x, y, out))
        np.testing.assert_allclose(out, f(x, y), rtol=2e-6, atol=2e-6, err_msg=name)
    if "x86_64-avx512" in levels:
        monkeypatch.setenv("TORSH_JIT_CPU_FEATURES", "-avx512f")
        k2 = tj.kernel(f, target=list(reversed(levels)))
        assert k2.target.name == "x86_64-avx2"            # same code, a CPU without AVX-512
        np.testing.assert_allclose(k2(x, y), f(x, y), rtol=2e-6, atol=2e-6)


def test_float32_sum_is_within_1e_6_of_the_float64_sum(rng):
    x = (rng.standard_normal(16 << 20) + 0.5).astype(np.float32)
    got = tj.kernel(lambda a: a.sum())(x)
    want = x.astype(np.float64).sum()
    assert abs(float(got) - want) <= 1e-6 * abs(want)
