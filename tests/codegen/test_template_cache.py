"""The compiled-template cache (templates-<jinja>-<tag>/ in the cache directory) is verified
like the kernel entries: a truncated, flipped, emptied, foreign or directory-shaped file is
never loaded; in a writable directory it is rebuilt, in a read-only one bypassed. Each case
runs kernels in a fresh process (templates are loaded once a process) against numpy."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# kernels of every LLVM skeleton (elementwise, reduce, matmul), checked against numpy; the
# kernel cache is off so every template is rendered from what the template cache holds
_CHILD = r"""
import sys
import numpy as np, torsh_jit as tj
rng = np.random.default_rng(int(sys.argv[1]))
x = rng.standard_normal((33, 70)).astype(np.float32)
w = rng.standard_normal((70, 9)).astype(np.float32)
np.testing.assert_allclose(tj.kernel(lambda x: x * 2 + 1)(x), x * 2 + 1, rtol=1e-6)
e = np.exp(x - x.max(axis=1, keepdims=True))
sm = lambda x: np.exp(x - x.max(axis=1, keepdims=True)) / np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
np.testing.assert_allclose(tj.kernel(sm)(x), e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
np.testing.assert_allclose(tj.kernel(lambda x, w: np.maximum(x @ w, 0))(x, w), np.maximum(x @ w, 0),
                           rtol=1e-4, atol=1e-4)
print("ok")
"""


def _run(cache: Path, rng, readonly: bool = False):
    # the wheel's precompiled templates off: what these tests check is the disk cache
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(cache), TORSH_JIT_CACHE="0",
               TORSH_JIT_SHIPPED_TEMPLATES="0")
    env.pop("TORSH_JIT_TEMPLATE_CACHE", None)
    cmd = [sys.executable, "-c", _CHILD, str(int(rng.integers(1 << 31)))]
    if readonly:
        # a read-only bind mount of the cache in a mount namespace of its own: read-only
        # even for root, who ignores a directory's mode bits
        d = str(cache)
        cmd = ["unshare", "-m", "sh", "-c",
               f'mount --bind "{d}" "{d}" && mount -o remount,bind,ro "{d}" && exec "$@"', "sh"] + cmd
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stderr[-4000:])


def _template_files(cache: Path) -> list[Path]:
    dirs = list(cache.glob("templates-*"))
    assert len(dirs) == 1, dirs
    return sorted(p for p in dirs[0].iterdir() if not p.name.startswith("."))


def _corrupt(p: Path, how: str) -> None:
    data = p.read_bytes()
    if how == "truncate":
        p.write_bytes(data[: len(data) // 2])
    elif how == "flip-body":
        b = bytearray(data)
        b[len(b) * 2 // 3] ^= 0x10
        p.write_bytes(bytes(b))
    elif how == "flip-checksum":
        b = bytearray(data)
        b[12] ^= 0x01
        p.write_bytes(bytes(b))
    elif how == "empty":
        p.write_bytes(b"")
    elif how == "foreign":
        p.write_bytes(b"j2" + data[2:])
    elif how == "directory":
        p.unlink()
        p.mkdir()
        (p / "x").write_bytes(data)
    else:
        raise AssertionError(how)


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache directory whose template cache the kernels above filled."""
    import numpy as np
    cache = tmp_path_factory.mktemp("tplcache")
    _run(cache, np.random.default_rng())
    files = _template_files(cache)
    assert files and all(f.suffix == ".tjtpl" for f in files)
    return cache


HOW = ["truncate", "flip-body", "flip-checksum", "empty", "foreign", "directory"]


@pytest.mark.parametrize("how", HOW)
def test_a_corrupt_template_file_is_rebuilt(how, warm, tmp_path, rng):
    cache = tmp_path / "c"
    shutil.copytree(warm, cache)
    files = _template_files(cache)
    for f in files:
        _corrupt(f, how)
    _run(cache, rng)
    if how != "directory":           # a directory in its place is left; the rest are rewritten
        good = _template_files(warm)
        assert [f.name for f in _template_files(cache)] == [f.name for f in good]
        for f, g in zip(_template_files(cache), good):
            assert f.read_bytes() == g.read_bytes(), f"{f.name} was not rebuilt"
    _run(cache, rng)                 # and what was rebuilt loads


def _can_mount_readonly(tmp_path) -> str:
    if not shutil.which("unshare"):
        return "no unshare(1) here"
    d = tmp_path / "probe"
    d.mkdir()
    r = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind "{d}" "{d}" && '
                        f'mount -o remount,bind,ro "{d}" && ! touch "{d}/f"'], capture_output=True)
    return "" if r.returncode == 0 else f"no read-only bind mount here: {r.stderr.decode()[-200:]}"


@pytest.mark.parametrize("how", HOW)
def test_a_corrupt_template_file_in_a_read_only_cache_is_bypassed(how, warm, tmp_path, rng):
    why = _can_mount_readonly(tmp_path)
    if why:
        pytest.skip(why)
    cache = tmp_path / "c"
    shutil.copytree(warm, cache)
    for f in _template_files(cache):
        _corrupt(f, how)
    before = {p: (p.read_bytes() if p.is_file() else None) for p in _template_files(cache)}
    _run(cache, rng, readonly=True)
    _run(cache, rng, readonly=True)  # every process compiles what it cannot trust, again
    assert {p: (p.read_bytes() if p.is_file() else None) for p in _template_files(cache)} == before
