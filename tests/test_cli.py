"""The torsh-jit command line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, check=True):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "torsh_jit.cli", *args], env=env, capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_targets_lists_every_target_and_host():
    out = cli("targets").stdout
    for name in ("x86_64-sse42", "x86_64-avx2", "x86_64-avx512"):
        assert name in out
    assert "(host)" in out


def test_explain_shows_graph_groups_config_and_source():
    out = cli("explain", "examples/softmax.py:softmax", "--arg", "f32[64,100]").stdout
    assert "== graph (as traced)" in out
    assert "after pass cse" in out
    assert "groups: 1 kernel(s)" in out
    assert "config: Config(lanes=" in out
    assert "define void @" in out           # the LLVM IR itself


def test_explain_bad_arg_spec_is_a_clear_error():
    r = cli("explain", "examples/softmax.py:softmax", "--arg", "float[3]", check=False)
    assert r.returncode == 2
    assert "dtype[shape]" in r.stderr and "Traceback" not in r.stderr


def test_explain_missing_function_lists_the_ones_there():
    r = cli("explain", "examples/softmax.py:nosuch", "--arg", "f32[4]", check=False)
    assert r.returncode == 2 and "softmax" in r.stderr


def test_cache_info_and_clear(tmp_path):
    env_dir = str(tmp_path)
    os.environ["TORSH_JIT_CACHE_DIR"], old = env_dir, os.environ["TORSH_JIT_CACHE_DIR"]
    try:
        cli("explain", "examples/gelu.py:gelu_mul", "--arg", "f32[10]", "--arg", "f32[10]", "--no-source")
        info = cli("cache", "info").stdout
        assert env_dir in info
        assert "removed" in cli("cache", "clear").stdout
    finally:
        os.environ["TORSH_JIT_CACHE_DIR"] = old


def test_demo_runs(tmp_path):
    out = cli("demo", "--size", "65536").stdout
    assert "softmax" in out and "speed-up" in out and "cache:" in out


def test_version_and_python_dash_m():
    import torsh_jit as tj
    out = subprocess.run([sys.executable, "-m", "torsh_jit", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"torsh-jit {tj.__version__}"
    assert "targets" in subprocess.run([sys.executable, "-m", "torsh_jit", "--help"],
                                       capture_output=True, text=True, timeout=120).stdout


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`torsh-jit explain ... | head -1`: no BrokenPipeError traceback. The pipe is made
    4 KiB (Linux F_SETPIPE_SZ), so the 20 KB the command prints cannot all fit in it before
    the reader closes it."""
    import fcntl
    r, w = os.pipe()
    fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    p = subprocess.Popen([sys.executable, "-m", "torsh_jit", "explain", "examples/softmax.py:softmax",
                          "--arg", "f32[64,100]"], stdout=w, stderr=subprocess.PIPE, cwd=ROOT)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.readline().startswith(b"target:")
    err = p.stderr.read().decode()      # the reader is gone; the writer meets EPIPE
    p.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
