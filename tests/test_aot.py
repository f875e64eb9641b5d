"""Ahead-of-time bundles: the object links into a C program that computes the right numbers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

KERNEL = '''
import numpy as np

def fused(x, w, b):
    h = np.maximum(x @ w + b, 0.0)
    return h, np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1)
'''

C_MAIN = r'''
#include <stdio.h>
#include "fused.h"
static float x[%(n)d], w[%(ww)d], b[%(m)d], o0[%(o0)d], o1[%(o1)d];
int main(void) {
    FILE *f = fopen("in.bin", "rb");
    if (fread(x, sizeof x, 1, f) != 1 || fread(w, sizeof w, 1, f) != 1 || fread(b, sizeof b, 1, f) != 1) return 3;
    fclose(f);
    if (fused(x, w, b, o0, o1) != 0) return 4;
    f = fopen("out.bin", "wb");
    fwrite(o0, sizeof o0, 1, f); fwrite(o1, sizeof o1, 1, f);
    fclose(f);
    return 0;
}
'''


@pytest.mark.parametrize("cc,main", [("gcc", "main.c"), ("g++", "main.cpp")])
def test_compile_bundle_links_and_runs(cc, main, tmp_path, rng):
    """From C and from C++ (the header declares the kernel extern "C")."""
    if shutil.which(cc) is None:
        pytest.skip(f"needs {cc} to link the object")
    (tmp_path / "k.py").write_text(KERNEL)
    env = dict(os.environ)           # the installed torsh_jit, as a user's shell has it
    r = subprocess.run([sys.executable, "-m", "torsh_jit", "compile", f"{tmp_path}/k.py:fused",
                        "--arg", "f32[13,37]", "--arg", "f32[37,29]", "--arg", "f32[29]",
                        "--target", "host", "-o", str(tmp_path / "out")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = manifest["entries"][0]
    assert entry["arguments"][0]["shape"] == [13, 37]
    assert entry["outputs"] == [{"dtype": "float32", "shape": [13, 29]}, {"dtype": "float32", "shape": [13]}]
    d = tmp_path / "out" / entry["target"]
    (d / main).write_text(C_MAIN % dict(n=13 * 37, ww=37 * 29, m=29, o0=13 * 29, o1=13))
    subprocess.run([cc, "-O1", "-o", "prog", main, "fused.o", "-lm"], cwd=d, check=True)
    x = rng.standard_normal((13, 37)).astype(np.float32)
    w = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal(29).astype(np.float32)
    (d / "in.bin").write_bytes(x.tobytes() + w.tobytes() + b.tobytes())
    subprocess.run(["./prog"], cwd=d, check=True, timeout=60)
    raw = np.frombuffer((d / "out.bin").read_bytes(), np.float32)
    o0, o1 = raw[:13 * 29].reshape(13, 29), raw[13 * 29:]
    np.testing.assert_allclose(o0, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(o1, np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1), rtol=1e-5)


def test_arg_spec_parsing():
    from torsh_jit.aot import parse_arg
    from torsh_jit.errors import ArgumentError
    s = parse_arg("f32[4096,1024]")
    assert (s.kind, s.shape, s.dtype) == ("array", (4096, 1024), "float32")
    assert parse_arg("i64").kind == "scalar"
    with pytest.raises(ArgumentError, match="dtype"):
        parse_arg("complex[3]")


# -- a bundle is whole or absent; wasm32's .wasm is always in it -----------------------------
GELU = str(ROOT / "examples" / "gelu.py") + ":gelu_mul"
ARGS = ["--arg", "f32[10]", "--arg", "f32[10]"]
_HAS_WASM_LD = shutil.which("wasm-ld") is not None and os.path.exists("/usr/lib/wasm32-wasi/libc.a")


def _compile(out, targets: str):
    from torsh_jit.cli import main
    return main(["compile", GELU, *ARGS, "--target", targets, "-o", str(out)])


def test_a_failing_target_leaves_no_bundle_behind(tmp_path, capsys):
    """host builds, then cuda-sm80 cannot be bundled: no directory, no host files, no temp."""
    assert _compile(tmp_path / "out", "host,cuda-sm80") == 2
    assert "cuda-sm80" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_target_failing_mid_build_leaves_an_existing_directory_as_it_was(tmp_path, monkeypatch, capsys):
    """wasm-ld missing: the host part built first is not written either, and the error says
    what to install."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))          # no wasm-ld (nor anything else)
    assert _compile(out / "bundle", "host,wasm32-simd128") == 2
    err = capsys.readouterr().err
    assert "wasm-ld" in err and "apt-get install lld" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "out"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_wasm_bundle_links_the_module_without_wasmtime(tmp_path, monkeypatch):
    """wasmtime runs modules; linking one needs only wasm-ld and wasi-libc."""
    if not _HAS_WASM_LD:
        why = "needs wasm-ld (apt-get install lld) and wasi-libc"
        if os.environ.get("TORSH_JIT_REQUIRE_RUNNERS") == "1":   # CI installs both
            pytest.fail(why)
        pytest.skip(why)
    monkeypatch.setitem(sys.modules, "wasmtime", None)      # looks uninstalled
    assert _compile(tmp_path / "out", "wasm32-simd128") == 0
    entry = json.loads((tmp_path / "out" / "manifest.json").read_text())["entries"][0]
    assert entry["files"]["wasm"] == "wasm32-simd128/gelu_mul.wasm"
    assert (tmp_path / "out" / entry["files"]["wasm"]).read_bytes()[:4] == b"\0asm"


def test_compiling_again_replaces_the_bundle_and_keeps_other_files(tmp_path):
    out = tmp_path / "out"
    assert _compile(out, "host,x86_64-sse42") == 0
    (out / "notes.txt").write_text("mine")
    (out / "x86_64-sse42" / "stale.o").write_bytes(b"old")
    assert _compile(out, "x86_64-sse42") == 0
    m = json.loads((out / "manifest.json").read_text())
    assert [e["target"] for e in m["entries"]] == ["x86_64-sse42"]
    assert not (out / "x86_64-sse42" / "stale.o").exists()
    assert (out / "x86_64-sse42" / "gelu_mul.o").exists() and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
