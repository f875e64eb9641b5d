"""Every file the cache directory holds is verified before it is used: a sweep that
corrupts each one (truncated, a byte flipped at the start, in the version field, in the
middle or near the end, emptied, replaced by a directory) and then runs kernels of every
kind of artifact in a fresh process, checked against numpy. In a writable directory the
bad files are rebuilt (the next process loads everything and writes nothing); in a
read-only one they are bypassed and left as they are. Either way no process crashes.

The files are found by walking the directory, and each must belong to a known kind
(`classify`): a new kind of file the cache starts writing fails here until it is added,
so it cannot go untested.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cache_format import entry_meta

REPO = Path(__file__).resolve().parents[1]

# One of every artifact kind this machine can make (host object, the native runtime
# object, an autotuned kernel with its measurements and decision, a qemu executable, a
# wasm module, an MSL harness executable, LLVM and C-style templates), each result
# checked against numpy on fresh data, then every kernel's source rendered for every
# target (so that every template file is read). The last line is the cache's stats as JSON, and the
# code hash every key holds.
_CHILD = r"""
import json, sys, warnings
import numpy as np, torsh_jit as tj
from torsh_jit.cache import get_cache
from torsh_jit.version import code_hash
warnings.simplefilter("ignore")            # a read-only cache warns that it cannot write
targets = set(json.loads(sys.argv[2]))
rng = np.random.default_rng(int(sys.argv[1]))
x = rng.standard_normal((33, 70)).astype(np.float32)
w = rng.standard_normal((70, 9)).astype(np.float32)
ew = tj.kernel(lambda x: x * 2 + 1)
np.testing.assert_allclose(ew(x), x * 2 + 1, rtol=1e-6)
def sm(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
np.testing.assert_allclose(tj.kernel(sm)(x), sm(x), rtol=1e-5, atol=1e-7)
mm = tj.kernel(lambda x, w: np.maximum(x @ w, 0), autotune=True, tune_budget_s=20, tune_trials=3)
np.testing.assert_allclose(mm(x, w), np.maximum(x @ w, 0), rtol=1e-4, atol=1e-4)
for t in ("aarch64-neon", "wasm32-simd128", "metal"):
    if t in targets:
        np.testing.assert_allclose(ew.to(t)(x), x * 2 + 1, rtol=1e-6)
# every template, rendered: a kernel whose object is cached renders none, so without this a
# corrupt template would never be read (harmless, but then its repair goes unchecked)
for k, args in ((ew, (x,)), (tj.kernel(sm), (x,)), (mm, (x, w))):
    for t in ("host", "cuda-sm90", "wgsl", *sorted(targets)):
        assert k.lower(*args, target=t).source
from torsh_jit.codegen.jinja_env import template           # the native runtime's (its object is cached)
assert "tj_fill_pointers" in template("llvm/runtime.ll.j2").render(triple="x86_64", pause="", spin=1)
print(json.dumps({**get_cache().stats, "code": code_hash()}))
"""

# Targets whose artifacts the cache keeps (wgsl keeps none: only its templates).
_EMULATED = ("aarch64-neon", "wasm32-simd128", "metal")


# -- what the cache directory holds -------------------------------------------------------------
_HEX = r"[0-9a-f]{2}"
_KINDS = [
    # (kind, pattern of the path relative to the cache root)
    ("kernel object", re.compile(r"v1/obj/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("emulator executable", re.compile(r"v1/exe/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("wasm module", re.compile(r"v1/wasm/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("cubin", re.compile(r"v1/cubin/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("tune measurement", re.compile(r"v1/tuning/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("tune decision", re.compile(r"v1/tuned/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("code hash", re.compile(r"v1/code/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("target table", re.compile(r"v1/targets/(..)/(\1[0-9a-f]{62})\.tjc")),
    ("entry of another format version", re.compile(r"v(?!1/)\d+/.+\.tjc")),
    ("temp file of an unfinished entry write", re.compile(r"v\d+/[^/]+/../\.[^/]+\.tmp")),
    ("lock", re.compile(r"locks/[^/]+/[0-9a-f]{64}\.lock")),
    ("compiled template", re.compile(r"templates-[^/]+/[0-9a-f]{40}\.tjtpl")),
    ("temp file of an unfinished template write", re.compile(r"templates-[^/]+/\.tpl-[^/]+")),
]
# the kinds every populated cache of this machine must hold (cubin needs a GPU)
_EXPECTED = {"kernel object", "emulator executable", "wasm module", "tune measurement",
             "tune decision", "code hash", "target table", "entry of another format version",
             "temp file of an unfinished entry write", "lock", "compiled template",
             "temp file of an unfinished template write"}


def classify(rel: str) -> str:
    for kind, pat in _KINDS:
        if pat.fullmatch(rel):
            return kind
    raise AssertionError(
        f"the cache directory holds {rel!r}, a kind of file this sweep does not know: add it to "
        "_KINDS (and make sure the cache verifies it before use)")


def cache_files(root: Path) -> dict[str, str]:
    """relative path -> kind, of every file (and of every directory standing where a file
    of a known kind should be) under root."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        for name in files + dirnames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if name in files or any(p.fullmatch(rel) for _k, p in _KINDS):
                out[rel] = classify(rel)
        dirnames[:] = [d for d in dirnames if not any(
            p.fullmatch((Path(dirpath) / d).relative_to(root).as_posix()) for _k, p in _KINDS)]
    return out


# -- an independent reader (from cache/FORMAT.md, not from torsh_jit) -------------------------
def _entry_ok(rel: str, data: bytes) -> bool:
    meta = entry_meta(data)
    parts = rel.split("/")
    return meta is not None and meta.get("kind") == parts[1] and meta.get("key") == parts[3][:-4]


def _template_ok(data: bytes) -> bool:
    return (len(data) > 40 and data.startswith(b"TJTPL\0\x01\0")
            and hashlib.sha256(data[40:]).digest() == data[8:40])


def sound(root: Path, rel: str, kind: str) -> bool:
    """Whether a file is what the format says it must be (temp files and entries of other
    versions are never read, so anything is sound for them)."""
    p = root / rel
    if kind.startswith("temp file") or kind == "entry of another format version":
        return True
    if not p.is_file() or p.is_symlink():
        return False
    if kind == "lock":
        return True                       # its contents are never read
    data = p.read_bytes()
    return _template_ok(data) if kind == "compiled template" else _entry_ok(rel, data)


# -- corruptions --------------------------------------------------------------------------------
def corrupt(p: Path, how: str) -> None:
    data = p.read_bytes()

    def flip(i):
        if not data:                      # an empty file (a lock): give it junk instead
            p.write_bytes(b"\xff" * 7)
            return
        b = bytearray(data)
        b[min(i, len(b) - 1)] ^= 0x5A
        p.write_bytes(bytes(b))

    if how == "truncate":
        p.write_bytes(data[: len(data) // 2])
    elif how == "flip-start":
        flip(0)
    elif how == "flip-version":           # an entry's format version field; a template's checksum
        flip(8)
    elif how == "flip-middle":
        flip(len(data) // 2)
    elif how == "flip-end":
        flip(len(data) - 2)
    elif how == "empty":
        p.write_bytes(b"")
    elif how == "missing":
        p.unlink()
    elif how == "directory":
        p.unlink()
        p.mkdir()
        (p / "x").write_bytes(data)
    else:
        raise AssertionError(how)


HOW = ["truncate", "flip-start", "flip-version", "flip-middle", "flip-end", "empty", "directory"]


# -- running kernels in a fresh process ---------------------------------------------------------
def _can_mount_readonly(tmp: Path) -> str:
    if not shutil.which("unshare"):
        return "no unshare(1) here"
    d = tmp / "probe"
    d.mkdir(exist_ok=True)
    r = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind "{d}" "{d}" && '
                        f'mount -o remount,bind,ro "{d}" && ! touch "{d}/f"'], capture_output=True)
    return "" if r.returncode == 0 else f"no read-only bind mount here: {r.stderr.decode()[-200:]}"


def run_kernels(cache: Path, seed: int, targets, readonly: bool = False) -> dict:
    """Run _CHILD on `cache` in a fresh process; its cache stats. Fails on a crash, a
    signal, an exception or a result numpy disagrees with."""
    # the wheel's precompiled templates off: the compiled-template files are swept too
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(cache), TORSH_JIT_TUNE_WORKERS="0",
               TORSH_JIT_SHIPPED_TEMPLATES="0")
    for k in ("TORSH_JIT_CACHE", "TORSH_JIT_TEMPLATE_CACHE", "TORSH_JIT_AUTOTUNE"):
        env.pop(k, None)
    cmd = [sys.executable, "-c", _CHILD, str(seed), json.dumps(sorted(targets))]
    if readonly:
        # a read-only bind mount of the cache in a mount namespace of its own: read-only
        # even for root, who ignores a directory's mode bits
        d = str(cache)
        cmd = ["unshare", "-m", "sh", "-c",
               f'mount --bind "{d}" "{d}" && mount -o remount,bind,ro "{d}" && exec "$@"', "sh"] + cmd
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (f"exit status {r.returncode}"
                               + (f" (signal {-r.returncode})" if r.returncode < 0 else ""),
                               r.stderr[-4000:])
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    if _code[0] is None:
        _code[0] = stats["code"]
    elif stats["code"] != _code[0]:
        # every key holds the code hash: an edit of the checkout while the tests run gives
        # every artifact a new key, and "the same file was rebuilt" can no longer be checked
        pytest.skip("the torsh_jit package changed while these tests ran; run them again")
    return stats


_code: list = [None]      # the code hash of the populated cache


@pytest.fixture(scope="module")
def targets():
    import torsh_jit as tj
    return [t for t in _EMULATED if t in tj.available_targets()]


@pytest.fixture(scope="module")
def populated(tmp_path_factory, targets):
    """A cache directory holding one file of every kind, as the kernels above leave it, plus
    what a dead writer and an older torsh-jit would have left there."""
    import numpy as np
    root = tmp_path_factory.mktemp("populated")
    run_kernels(root, int(np.random.default_rng().integers(1 << 31)), targets)
    files = cache_files(root)
    some_entry = next(r for r, k in files.items() if k == "kernel object")
    some_tpl = next(r for r, k in files.items() if k == "compiled template")
    (root / Path(some_entry).parent / ".0123abcd.x1y2z3.tmp").write_bytes(b"half an entry")
    (root / Path(some_tpl).parent / ".tpl-x1y2z3").write_bytes(b"half a template")
    v0 = root / "v0" / "kernel" / ("ab" * 32 + ".tjc")
    v0.parent.mkdir(parents=True)
    shutil.copyfile(REPO / "cache" / "fixtures" / "v0_entry.tjc", v0)
    return root


def test_the_populated_cache_holds_every_kind_and_only_known_kinds(populated, targets):
    kinds = set(cache_files(populated).values())
    expected = set(_EXPECTED)
    if not {"aarch64-neon", "metal"} & set(targets):
        expected.discard("emulator executable")
    if "wasm32-simd128" not in targets:
        expected.discard("wasm module")
    assert expected <= kinds, f"missing: {sorted(expected - kinds)}"
    for rel, kind in cache_files(populated).items():
        assert sound(populated, rel, kind), rel


def _copy(populated: Path, dest: Path, how: str, only: str | None = None) -> dict[str, str]:
    shutil.copytree(populated, dest, symlinks=True)
    files = cache_files(dest)
    for rel, kind in files.items():
        if only is None or kind == only:
            corrupt(dest / rel, how)
    return files


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, _d, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


@pytest.mark.parametrize("how", HOW)
def test_every_corrupt_file_is_ignored_and_rebuilt(how, populated, targets, tmp_path, rng):
    cache = tmp_path / "c"
    files = _copy(populated, cache, how)
    stats = run_kernels(cache, int(rng.integers(1 << 31)), targets)
    assert stats["corrupt"] > 0 or how == "flip-version", stats
    # repaired: every file the kernels need is sound again, and nothing stands in its place
    after = cache_files(cache)
    for rel, kind in files.items():
        assert rel in after, f"{rel} ({kind}) was not rebuilt"
        assert sound(cache, rel, kind), f"{rel} ({kind}) was left {how}"
    # and the next process finds everything: no rebuild, no write, nothing corrupt
    stats = run_kernels(cache, int(rng.integers(1 << 31)), targets)
    assert stats["writes"] == stats["corrupt"] == stats["misses"] == 0, stats


@pytest.mark.parametrize("how", HOW)
def test_every_corrupt_file_in_a_read_only_cache_is_bypassed(how, populated, targets, tmp_path, rng):
    why = _can_mount_readonly(tmp_path)
    if why:
        if os.environ.get("TORSH_JIT_REQUIRE_RUNNERS") == "1":      # CI: the read-only half is required
            pytest.fail(f"the read-only cache sweep cannot run: {why}")
        pytest.skip(why)
    cache = tmp_path / "c"
    _copy(populated, cache, how)
    before = _snapshot(cache)
    stats = run_kernels(cache, int(rng.integers(1 << 31)), targets, readonly=True)
    assert stats["hits"] == 0, stats      # nothing corrupt was taken as it is
    assert _snapshot(cache) == before


# One kind corrupted at a time, the rest sound: paths the all-at-once sweep cannot reach
# (a decision whose measurements are sound, an object whose template is sound...). With the
# rest sound, some files of a kind are never read (the objects of the configs the tuner
# tried and did not pick; the runtime's template, its object cached): which ones are read
# is measured by deleting the kind's files first and seeing which come back.
_ONE_KIND = sorted(_EXPECTED - {"entry of another format version", "temp file of an unfinished entry write",
                                "temp file of an unfinished template write"})
# kinds of which a process whose other files are sound always reads some
_ALWAYS_READ = {"kernel object", "compiled template", "tune decision", "code hash", "target table"}


def test_each_kind_corrupted_alone(populated, targets, tmp_path, rng):
    present = set(cache_files(populated).values())
    kinds = [k for k in _ONE_KIND if k in present]
    seeds = iter(rng.integers(1 << 31, size=3 * len(kinds)).tolist())
    seeds = {(k, how): next(seeds) for k in kinds for how in ("missing", "flip-middle", "directory")}

    def one(kind):
        cache = tmp_path / f"{kind.replace(' ', '-')}-missing"
        files = _copy(populated, cache, "missing", only=kind)
        run_kernels(cache, seeds[kind, "missing"], targets)
        needed = sorted(rel for rel, k in files.items() if k == kind and (cache / rel).exists())
        bad = {}
        for how in ("flip-middle", "directory"):
            cache = tmp_path / f"{kind.replace(' ', '-')}-{how}"
            _copy(populated, cache, how, only=kind)
            run_kernels(cache, seeds[kind, how], targets)
            bad[how] = [rel for rel in needed if not sound(cache, rel, kind)]
        return kind, needed, bad

    with ThreadPoolExecutor(2) as pool:
        for kind, needed, bad in pool.map(one, kinds):
            assert needed or kind not in _ALWAYS_READ, f"no {kind} file was read"
            for how, rels in bad.items():
                assert not rels, f"{kind} {how}: read but left unrepaired: {rels}"
