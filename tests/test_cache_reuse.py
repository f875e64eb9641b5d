"""The disk cache across processes: reuse without code generation, corrupt entries rebuilt."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


# A child process: compile (or load) one kernel, check it against numpy, report how many
# LLVM code generations and object loads it needed.
CHILD = r"""
import json, sys
import numpy as np
import torsh_jit as tj
from torsh_jit.backends.llvm import build as llvm_cpu

@tj.kernel
def chain(a, b, c):
    return np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)

rng = np.random.default_rng()
a, b, c = (rng.standard_normal(1000).astype(np.float32) for _ in range(3))
out = chain(a, b, c)
ref = np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)
ok = bool(np.allclose(out, ref, rtol=1e-5, atol=1e-6))
print(json.dumps({"ok": ok, **llvm_cpu.STATS}))
"""


def _run(cache_dir, **env_extra):
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(cache_dir), **env_extra)
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_second_process_does_no_codegen(tmp_path):
    first = _run(tmp_path)
    assert first["ok"] and first["codegen"] == 1
    second = _run(tmp_path)
    assert second["ok"]
    assert second["codegen"] == 0, "a cached kernel was generated again in a new process"
    assert second["object_loads"] >= 1


def test_corrupted_entry_is_rebuilt(tmp_path):
    assert _run(tmp_path)["codegen"] == 1
    entries = list(Path(tmp_path).rglob("*.tjc"))
    assert entries, "no cache entry was written"
    for e in entries:
        data = bytearray(e.read_bytes())
        data[len(data) // 2] ^= 0xFF          # flip a payload byte: the checksum must catch it
        e.write_bytes(bytes(data))
    again = _run(tmp_path)
    assert again["ok"] and again["codegen"] == 1, "a corrupt entry was used instead of rebuilt"
    third = _run(tmp_path)
    assert third["ok"] and third["codegen"] == 0, "the rebuilt entry was not stored"


def test_cache_disabled(tmp_path):
    r1 = _run(tmp_path, TORSH_JIT_CACHE="0")
    r2 = _run(tmp_path, TORSH_JIT_CACHE="0")
    assert r1["ok"] and r2["ok"] and r1["codegen"] == 1 and r2["codegen"] == 1
    assert not list(Path(tmp_path).rglob("*.tjc"))


def test_same_process_reuses_without_retrace(rng):
    import torsh_jit as tj
    from torsh_jit.backends.llvm import build as llvm_cpu
    calls = []

    @tj.kernel
    def f(x, s):
        calls.append(1)
        return x * s + 1.0

    x = rng.standard_normal(100).astype(np.float32)
    before = llvm_cpu.STATS["codegen"]
    np.testing.assert_allclose(f(x, 2.0), x * np.float32(2.0) + 1, rtol=1e-6)
    np.testing.assert_allclose(f(x, 3.5), x * np.float32(3.5) + 1, rtol=1e-6)  # new scalar value
    assert len(calls) == 1, "a new scalar value retraced the function"
    assert llvm_cpu.STATS["codegen"] - before <= 1
    y = rng.standard_normal(101).astype(np.float32)                            # new shape
    np.testing.assert_allclose(f(y, 2.0), y * np.float32(2.0) + 1, rtol=1e-6)
    assert len(calls) == 2
