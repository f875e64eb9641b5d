"""Which targets the tests in tests/targets run on (every CPU and wasm target, and metal
through the MSL harness), and skipping or failing when one cannot run here
(TORSH_JIT_REQUIRE_RUNNERS=1: fail, unless no runner could be installed for it at all:
a native target this CPU lacks the features of, which the test summary lists)."""
from __future__ import annotations

import os

import pytest

import torsh_jit as tj
from torsh_jit.runtime.hardware import can_run, lacking_hardware, missing_runners

# languages whose targets run the op corpus here (CUDA needs a GPU: tests/backends)
CORPUS_LANGUAGES = ("llvm", "wgsl", "msl")

# vector lengths (bits) each emulated scalable target is tested at
LENGTHS = {"aarch64-sve": (128, 512), "riscv64-rvv": (128, 256)}


def configs():
    out = []
    for name, t in sorted(tj.known_targets().items(), key=lambda kv: (-kv[1].rank, kv[0])):
        if t.language not in CORPUS_LANGUAGES:
            continue
        if t.vlen_env:
            assert name in LENGTHS, f"{name} has a vector length setting: say which two to test"
            out += [pytest.param((name, {t.vlen_env: str(v)}), id=f"{name}@{v}") for v in LENGTHS[name]]
        else:
            out.append(pytest.param((name, {}), id=name))
    return out


def require_target(name: str) -> None:
    """Skip (or, under TORSH_JIT_REQUIRE_RUNNERS=1, fail) when the target cannot run here."""
    t = tj.parse_target(name)
    if can_run(t):
        return
    lacking = dict(lacking_hardware())
    if name in lacking:
        # no runner can be installed for it: the terminal summary lists it, even in CI
        pytest.skip(f"{name} not executed: {lacking[name]} (no emulator here runs it)")
    why = dict(missing_runners()).get(name, "cannot run on this machine")
    if os.environ.get("TORSH_JIT_REQUIRE_RUNNERS") == "1":
        pytest.fail(f"{name} cannot run here and TORSH_JIT_REQUIRE_RUNNERS=1: {why}")
    pytest.skip(f"{name}: {why}")
