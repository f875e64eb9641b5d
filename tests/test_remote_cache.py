"""The remote cache tier against a real redis-server (TORSH_JIT_REMOTE_CACHE=redis://...).

Each process gets its own local cache directory; what they share is the server. Checked:
a second process compiles nothing that a first one stored; a corrupted remote entry is
rejected (checksum) and rebuilt; a server killed in the middle of a run, one that is not
there, and one that never answers all leave results right, with one warning and no
exception. Results are compared with numpy on fresh data in every process.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
import redis          # in the test extra: a missing client fails collection, never skips

from cache_format import entry_meta

# kernels of three artifact kinds (a host object, an emulator executable); each line of
# stdin lets the next stage run, so a test can act on the server in between
_CHILD = r"""
import json, sys, warnings
import numpy as np, torsh_jit as tj
from torsh_jit.cache import get_cache
from torsh_jit.backends.llvm import build as llvm_cpu
warnings.simplefilter("always")
rng = np.random.default_rng(int(sys.argv[1]))
stages = int(sys.argv[2])
x = rng.standard_normal((37, 50)).astype(np.float32)
w = rng.standard_normal((50, 7)).astype(np.float32)
def sm(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
with warnings.catch_warnings(record=True) as seen:
    np.testing.assert_allclose(tj.kernel(lambda x: x * 3 - 1)(x), x * 3 - 1, rtol=1e-6)
    np.testing.assert_allclose(tj.kernel(sm)(x), sm(x), rtol=1e-5, atol=1e-7)
    if stages > 1:
        print("stage", flush=True)
        sys.stdin.readline()
        np.testing.assert_allclose(tj.kernel(lambda x, w: np.tanh(x @ w))(x, w), np.tanh(x @ w),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(tj.kernel(lambda x: x / 4 + 2).to("aarch64-neon")(x), x / 4 + 2,
                                   rtol=1e-6)
remote = [str(m.message) for m in seen if "remote" in str(m.message)]
print(json.dumps({**get_cache().stats, "codegen": llvm_cpu.STATS["codegen"], "remote_warnings": remote}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp):
        exe = shutil.which("redis-server")
        if exe is None:
            msg = "redis-server is not installed (apt-get install redis-server)"
            if os.environ.get("TORSH_JIT_REQUIRE_RUNNERS") == "1":
                pytest.fail(msg)
            pytest.skip(msg)
        self.port = _free_port()
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=20)

    def entries(self) -> dict[bytes, bytes]:
        return {k: self.client.get(k) for k in self.client.keys("torsh-jit:*")}


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    if s.proc.poll() is None:
        s.kill()


def run(local, url, rng, stages=1, on_stage=None, env_extra=None) -> dict:
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(local), TORSH_JIT_REMOTE_CACHE=url,
               TORSH_JIT_REMOTE_TIMEOUT_S="0.5", **(env_extra or {}))
    env.pop("TORSH_JIT_CACHE", None)
    p = subprocess.Popen([sys.executable, "-c", _CHILD, str(int(rng.integers(1 << 31))), str(stages)],
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    if stages > 1:
        assert p.stdout.readline().strip() == "stage", p.stderr.read()[-3000:]
        on_stage()
        p.stdin.write("go\n")
        p.stdin.flush()
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, (p.returncode, err[-4000:])
    assert "Traceback" not in err, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


def _sound(name: bytes, data: bytes) -> bool:
    """The entry format of cache/FORMAT.md, read independently of torsh_jit."""
    meta = entry_meta(data)
    _, v, kind, key = name.decode().split(":")
    return meta is not None and v == "v1" and meta["kind"] == kind and meta["key"] == key


def test_two_processes_with_their_own_directories_share_one_remote(server, tmp_path, rng):
    a = run(tmp_path / "a", server.url, rng, stages=2, on_stage=lambda: None)
    assert a["codegen"] > 0 and a["remote_writes"] > 0 and a["remote_warnings"] == [], a
    stored = server.entries()
    assert stored and all(_sound(k, v) for k, v in stored.items())
    assert any(k.startswith(b"torsh-jit:v1:exe:") for k in stored)      # the emulator executable
    b = run(tmp_path / "b", server.url, rng, stages=2, on_stage=lambda: None)
    assert b["codegen"] == 0 and b["remote_hits"] > 0 and b["remote_corrupt"] == 0, b
    # what came from the remote is in b's directory now: a third run needs no remote
    c = run(tmp_path / "b", "", rng, stages=2, on_stage=lambda: None)
    assert c["codegen"] == 0 and c["misses"] == 0, c


def test_a_corrupted_remote_entry_is_rejected_and_rebuilt(server, tmp_path, rng):
    run(tmp_path / "a", server.url, rng)
    stored = server.entries()
    for k, v in stored.items():               # a byte flipped in the payload of each
        b = bytearray(v)
        b[len(b) - 3] ^= 0x5A
        server.client.set(k, bytes(b))
    r = run(tmp_path / "b", server.url, rng)
    assert r["remote_hits"] == 0 and r["remote_corrupt"] > 0 and r["codegen"] > 0, r
    after = server.entries()
    assert after.keys() == stored.keys() and all(_sound(k, v) for k, v in after.items())


def test_the_server_killed_mid_run_leaves_results_right(server, tmp_path, rng):
    r = run(tmp_path / "a", server.url, rng, stages=2, on_stage=server.kill)
    assert len(r["remote_warnings"]) == 1, r
    assert "going on with the local cache only" in r["remote_warnings"][0]
    # the local directory kept everything the second stage built
    again = run(tmp_path / "a", "", rng, stages=2, on_stage=lambda: None)
    assert again["codegen"] == 0 and again["misses"] == 0, again


def test_a_remote_that_is_absent_or_never_answers_costs_one_warning(tmp_path, rng):
    r = run(tmp_path / "a", f"redis://127.0.0.1:{_free_port()}/0", rng, stages=2, on_stage=lambda: None)
    assert len(r["remote_warnings"]) == 1 and "ConnectionError" in r["remote_warnings"][0], r
    silent = socket.socket()                  # accepts, then never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(16)], daemon=True).start()
    try:
        r = run(tmp_path / "b", f"redis://127.0.0.1:{silent.getsockname()[1]}/0", rng, stages=2,
                on_stage=lambda: None)
    finally:
        silent.close()
    assert len(r["remote_warnings"]) == 1 and "Timeout" in r["remote_warnings"][0], r


@pytest.mark.parametrize("env,part", [
    ({"TORSH_JIT_REMOTE_CACHE": "http://example.com"}, "is not a Redis URL"),
    ({"TORSH_JIT_REMOTE_CACHE": "redis://127.0.0.1:1/0", "TORSH_JIT_REMOTE_TIMEOUT_S": "soon"},
     "TORSH_JIT_REMOTE_TIMEOUT_S='soon'"),
])
def test_bad_settings_are_one_warning_naming_the_variable(env, part, tmp_path, monkeypatch, rng):
    import warnings

    import numpy as np

    import torsh_jit as tj
    from torsh_jit.cache import CacheWarning, get_cache
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TORSH_JIT_CACHE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        get_cache()
        x = rng.standard_normal(9)
        np.testing.assert_allclose(tj.kernel(lambda x: x - 5)(x), x - 5)
    mine = [str(w.message) for w in seen if issubclass(w.category, CacheWarning)]
    assert len([m for m in mine if part in m]) == 1, mine
