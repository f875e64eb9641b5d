"""Runners: targets of other ISAs execute here through the same call, missing tools are
errors that say what to install, artifacts are cached by key, emulated vector lengths
are honoured."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit import compiler
from torsh_jit.errors import RunnerError, TargetError
from torsh_jit.ir.tracer import spec_of
from torsh_jit.runtime import hardware
from torsh_jit.backends.llvm import host
from torsh_jit.backends import runners

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))
from target_configs import require_target  # noqa: E402

EMULATED = ["aarch64-neon", "aarch64-sve", "riscv64-rvv", "wasm32-simd128"]


def gelu_mul(x, y):
    return 0.5 * x * (1 + tj.tanh(0.7978845608 * (x + 0.044715 * x ** 3))) * y


@pytest.mark.parametrize("target", EMULATED)
def test_to_runs_the_kernel_here(target, rng):
    require_target(target)
    a, b = rng.standard_normal((2, 1000)).astype(np.float32)
    got = tj.kernel(gelu_mul).to(target)(a, b)
    want = 0.5 * a * (1 + np.tanh(0.7978845608 * (a + 0.044715 * a ** 3))) * b
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert target in tj.available_targets()


@pytest.mark.parametrize("target", EMULATED)
def test_views_scalars_and_empty_arrays(target, rng):
    """Inputs the runner must lay out: negative steps, transposes, 0-d scalars, size 0."""
    require_target(target)
    base = rng.standard_normal((6, 9))
    x = base[::-2, 1::3]                         # (3, 3) with a negative row stride
    y = rng.standard_normal((3, 3)).T.astype(np.float32)
    k = tj.kernel(lambda x, y, s, e: (x * s + y, e + 1)).to(target)
    got, empty = k(x, y, 2.5, np.zeros((0, 4), np.int32))
    np.testing.assert_allclose(got, x * 2.5 + y, rtol=1e-12)
    assert empty.shape == (0, 4) and empty.dtype == np.int32


@pytest.mark.parametrize("target,lengths", [("aarch64-sve", (128, 256, 512, 2048)),
                                             ("riscv64-rvv", (128, 256, 512, 1024))])
def test_emulated_vector_length_is_what_was_asked(target, lengths, monkeypatch, rng):
    require_target(target)
    t = tj.parse_target(target)
    x = rng.standard_normal(1003).astype(np.float32)
    p, _ = tj.kernel(lambda x: np.exp(x).sum())._plan((spec_of(x),), target=target)
    fn = compiler.build(p)
    for v in lengths:
        monkeypatch.setenv(t.vlen_env, str(v))
        out = np.empty((), np.float32)
        fn.run((x, out))
        assert fn.last_vector_bits == v
        np.testing.assert_allclose(out, np.exp(x.astype(np.float64)).sum(), rtol=1e-5)
    monkeypatch.setenv(t.vlen_env, "96")
    with pytest.raises(RunnerError, match="not a vector length"):
        fn.run((x, np.empty((), np.float32)))


def test_second_build_neither_generates_code_nor_links(monkeypatch, rng):
    require_target("riscv64-rvv")
    from torsh_jit.backends.llvm import build as llvm_cpu
    from torsh_jit.backends.runners import qemu
    x = rng.standard_normal(77).astype(np.float32)
    fn = lambda x: np.sin(x) * 3 + 0.125  # noqa: E731
    p, _ = tj.kernel(fn)._plan((spec_of(x),), target="riscv64-rvv")
    compiler.build(p)
    compiler.LOADED.pop(p.key, None)          # as a new process would start
    links = []
    monkeypatch.setattr(qemu, "link", lambda *a, **k: links.append(1))
    before = llvm_cpu.STATS["codegen"]
    f2 = compiler.build(p)
    assert links == [] and llvm_cpu.STATS["codegen"] == before
    out = np.empty(77, np.float32)
    f2.run((x, out))
    np.testing.assert_allclose(out, np.sin(x) * 3 + 0.125, rtol=1e-6)


def _without_tools(monkeypatch, tmp_path):
    """A PATH with none of the runners' commands on it."""
    monkeypatch.setenv("PATH", str(tmp_path))


def test_missing_emulator_says_which_package(monkeypatch, tmp_path, rng):
    _without_tools(monkeypatch, tmp_path)
    t = tj.parse_target("aarch64-neon")
    assert not hardware.runner_available(t)
    assert "aarch64-neon" not in tj.available_targets() or hardware.runs_natively(t)
    if hardware.runs_natively(t):
        pytest.skip("an AArch64 host runs it natively")
    p, _ = tj.kernel(gelu_mul)._plan((spec_of(np.zeros(8, np.float32)),) * 2,
                                     target="aarch64-neon")
    compiler.LOADED.pop(p.key, None)
    with pytest.raises(RunnerError) as e:
        compiler.build(p)
    msg = str(e.value)
    assert "qemu-aarch64" in msg and "qemu-user" in msg and "gcc-aarch64-linux-gnu" in msg
    assert isinstance(e.value, TargetError)
    missing = dict(hardware.missing_runners())
    assert "apt-get install" in missing["riscv64-rvv"] and "qemu-user" in missing["riscv64-rvv"]
    assert "lld" in missing["wasm32-simd128"]


def test_every_emulated_target_declares_what_it_needs():
    for name, t in tj.known_targets().items():
        if t.language != "llvm" or t.runner == "native":
            continue
        assert runners.kind(t), f"{name}: runner {t.runner!r} is not one of {sorted(runners.KINDS)}"
        needs = [dict(n) for n in t.needs]
        assert needs and all(("debian" in n) or ("pip" in n) for n in needs), name
        assert t.runner in [n.get("command") for n in needs] or runners.kind(t) == "wasmtime"


def test_runners_command_reports_status(capsys):
    from torsh_jit.cli import main
    rc = main(["runners"])
    out = capsys.readouterr().out
    for name in EMULATED:
        assert name in out
    assert rc == (1 if runners.all_missing() else 0)


def test_host_is_never_an_emulated_target():
    host = tj.parse_target("host")
    assert hardware.runs_natively(host)
    assert tj.available_targets()[0] == host.name


def test_runs_natively_is_about_the_triple(monkeypatch):
    """On an AArch64 host, the aarch64 targets are native (NEON always, SVE with the feature)."""
    monkeypatch.setattr(host, "machine_arch", lambda: "aarch64")
    monkeypatch.setattr(host, "host_features", lambda: frozenset({"neon", "fp-armv8"}))
    assert host.runs_natively(tj.parse_target("aarch64-neon"))
    assert not host.runs_natively(tj.parse_target("aarch64-sve"))
    assert not host.runs_natively(tj.parse_target("x86_64-sse42"))
    monkeypatch.setattr(host, "host_features", lambda: frozenset({"neon", "fp-armv8", "sve"}))
    assert host.runs_natively(tj.parse_target("aarch64-sve"))


def test_too_old_emulator_is_missing_and_says_why(monkeypatch, tmp_path):
    """riscv64-rvv declares qemu-riscv64 >= 8.0 (7.2 aborts on RVV .rtz conversions)."""
    fake = tmp_path / "qemu-riscv64"
    fake.write_text('#!/bin/sh\necho "qemu-riscv64 version 7.2.22 (Debian 1:7.2+dfsg-7)"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    t = tj.parse_target("riscv64-rvv")
    assert not runners.available(t)
    why = dict(hardware.missing_runners())["riscv64-rvv"]
    assert ">= 8.0" in why and "7.2" in why and "backports" in why


BAD_VLENS = {"aarch64-sve": ["abc", "100", "0", "-128", "2.5", "0x80", "4096", "2176"],
             "riscv64-rvv": ["abc", "100", "0", "-128", "192", "2048", "65536"]}


@pytest.mark.parametrize("target", sorted(BAD_VLENS))
def test_a_bad_vector_length_is_one_clear_error(target, monkeypatch, rng):
    """Ours, naming the variable and what it accepts: not a ValueError, not qemu's refusal
    of its -cpu options reported as a crash of generated code."""
    require_target(target)
    t = tj.parse_target(target)
    x = rng.standard_normal(17).astype(np.float32)
    k = tj.kernel(lambda x: x * 2).to(target)
    for bad in BAD_VLENS[target]:
        monkeypatch.setenv(t.vlen_env, bad)
        with pytest.raises(RunnerError) as e:
            k(x)
        text = str(e.value)
        assert f"{t.vlen_env}={bad!r}" in text and f"{t.runner}:" not in text, text
        assert "bug" not in text and e.value.__cause__ is None, text
        assert f"{min(t.vlens)}" in e.value.hint and f"{max(t.vlens)}" in e.value.hint, text
        assert "bits" in e.value.hint, text
    monkeypatch.setenv(t.vlen_env, f" {t.vlens[-1]} ")
    np.testing.assert_array_equal(k(x), x * 2)


def test_emulator_command_refuses_a_length_qemu_would_reject():
    from torsh_jit.backends.runners.qemu import emulator_command
    for target, bad in [("aarch64-sve", 4096), ("aarch64-sve", 200), ("riscv64-rvv", 192),
                        ("riscv64-rvv", 2048)]:
        t = tj.parse_target(target)
        with pytest.raises(RunnerError, match=f"{bad}-bit vectors") as e:
            emulator_command(t, bad)
        assert t.vlen_env in e.value.hint
        assert f"{t.vlens[-1]}" in " ".join(emulator_command(t, t.vlens[-1]))


def test_accepted_vector_lengths_read_as_a_rule():
    from torsh_jit.backends.runners.qemu import describe_lengths
    assert describe_lengths(range(128, 2049, 128)) == "128..2048 in multiples of 128"
    assert describe_lengths((128, 256, 512, 1024)) == \
        "128, 256, 512 or 1024 (powers of 2 from 128 to 1024)"
    assert describe_lengths((128, 384)) == "128 or 384"


@pytest.mark.parametrize("value,part", [("abc", "'abc'"), ("-not_a_cpu_feature", "not_a_cpu_feature"),
                                        ("+bogus2", "bogus2"), ("-", "'-'"), ("avx2", "'avx2'")])
def test_bad_cpu_features_variable_is_a_clear_error(value, part, monkeypatch):
    monkeypatch.setenv("TORSH_JIT_CPU_FEATURES", value)
    with pytest.raises(TargetError) as e:
        tj.available_targets()
    text = str(e.value)
    assert "TORSH_JIT_CPU_FEATURES" in text and part in text, text
    assert e.value.hint and "-avx512f" in e.value.hint, text


def test_cpu_features_variable_masks_known_features(monkeypatch):
    some = sorted(hardware.host_features())[0]
    monkeypatch.setenv("TORSH_JIT_CPU_FEATURES", f" -{some}, ,")
    assert some not in hardware.host_features()
    monkeypatch.setenv("TORSH_JIT_CPU_FEATURES", "")
    assert some in hardware.host_features()
