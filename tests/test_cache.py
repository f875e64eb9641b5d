"""Tests of torsh_jit/cache/ and of the on-disk format in cache/FORMAT.md. No hardware needed."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
import warnings
from pathlib import Path

import filelock
import platformdirs
import pytest

from torsh_jit import cache as tjc
from torsh_jit.cache import FORMAT_VERSION, Cache, CacheWarning, NullCache, get_cache, make_key

FIXTURES = Path(__file__).resolve().parent.parent / "cache" / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))


def key_of(i) -> str:
    return make_key({"test": i})


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path / "c")


# ------------------------------------------------------------------------------------ keys


def test_key_is_sha256_of_canonical_json():
    parts = {"c": {"d": "é"}, "b": (1, 2.5, True, None), "a": "x"}
    canonical = b'{"a":"x","b":[1,2.5,true,null],"c":{"d":"\\u00e9"}}'
    assert make_key(parts) == hashlib.sha256(canonical).hexdigest()
    # Written out, so that a change of the key function (which would orphan every user's
    # cache) cannot pass unnoticed.
    assert make_key(parts) == "7adcd5241a3bb8ae3168716d0a75a3117160164f441ffb4bba9cb0f0cb9f3668"


def test_key_ignores_dict_order_and_tuple_vs_list():
    a = {"target": "x86_64-avx2", "config": {"unroll": 2, "vw": 8}, "shape": (4, 5)}
    b = {"shape": [4, 5], "config": {"vw": 8, "unroll": 2}, "target": "x86_64-avx2"}
    assert make_key(a) == make_key(b)


def test_key_distinguishes_values_that_print_alike():
    keys = {make_key({"v": v}) for v in (1, 1.0, True, "1", None, [1], 0, -0.0, 0.0)}
    assert len(keys) == 9


@pytest.mark.parametrize("bad", [
    {"s": {1, 2}}, {"b": b"bytes"}, {"o": object()}, {1: "int key"}, {"n": [Path("p")]},
])
def test_key_refuses_other_types(bad):
    with pytest.raises(TypeError):
        make_key(bad)


def test_key_refuses_subclasses_and_cycles():
    import enum

    class E(enum.IntEnum):
        A = 1

    with pytest.raises(TypeError):
        make_key({"e": E.A})
    with pytest.raises(TypeError):
        make_key([1, 2])                      # parts must be a dict
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError):
        make_key({"loop": loop})


# ------------------------------------------------------------------------------- basic use


def test_round_trip(cache, tmp_path):
    key = key_of("rt")
    assert cache.get("kernel", key) is None
    payload = bytes(range(256)) * 10
    cache.put("kernel", key, payload, meta={"target": "x86_64-avx2", "package_version": "9.9"})
    assert cache.get("kernel", key) == payload
    got, meta = cache.get_entry("kernel", key)
    assert got == payload
    assert meta["kind"] == "kernel" and meta["key"] == key and meta["target"] == "x86_64-avx2"
    assert meta["package_version"] == "9.9"
    assert abs(meta["created"] - time.time()) < 60
    # The documented place, and nothing else left behind (no temp files).
    path = tmp_path / "c" / f"v{FORMAT_VERSION}" / "kernel" / key[:2] / (key + ".tjc")
    assert path.is_file()
    assert os.listdir(path.parent) == [key + ".tjc"]
    assert cache.keys("kernel") == [key] and cache.keys("tuning") == []
    assert cache.stats == {"hits": 2, "misses": 1, "writes": 1, "corrupt": 0, "mismatched": 0,
                           "write_errors": 0, "remote_hits": 0, "remote_corrupt": 0, "remote_writes": 0}
    # A second Cache on the same root (another process, later) reads it back.
    assert Cache(tmp_path / "c").get("kernel", key) == payload


def test_kinds_are_separate_and_overwrite_wins(cache):
    key = key_of("k")
    cache.put("kernel", key, b"object code")
    cache.put("tuning", key, b'{"vw": 8}')
    cache.put("kernel", key, b"new object code")
    assert cache.get("kernel", key) == b"new object code"
    assert cache.get("tuning", key) == b'{"vw": 8}'
    cache.put("kernel", key, b"")                       # an empty payload is a payload
    assert cache.get("kernel", key) == b""


@pytest.mark.parametrize("kind,key", [("../x", "ab"), ("kernel", "../../etc"), ("kernel", "a"),
                                      ("kernel", "ab.c"), ("", "abc"), ("a/b", "abc")])
def test_names_that_could_escape_the_root_are_refused(cache, kind, key):
    with pytest.raises(ValueError):
        cache.put(kind, key, b"x")
    with pytest.raises(ValueError):
        cache.get(kind, key)


def test_bad_payload_and_meta_are_caller_errors(cache):
    with pytest.raises(TypeError):
        cache.put("kernel", key_of(1), "a str")
    with pytest.raises(TypeError):
        cache.put("kernel", key_of(1), b"x", meta={"obj": object()})


def test_info(cache, tmp_path):
    cache.put("kernel", key_of(1), b"a" * 100)
    cache.put("kernel", key_of(2), b"b" * 100)
    cache.put("tuning", key_of(3), b"c" * 10)
    info = cache.info()
    size = lambda k, i: cache.path(k, key_of(i)).stat().st_size  # noqa: E731
    assert info["root"] == str(tmp_path / "c")
    assert info["enabled"] is True
    assert info["entries"] == 3
    assert info["by_kind"] == {
        "kernel": {"entries": 2, "bytes": size("kernel", 1) + size("kernel", 2)},
        "tuning": {"entries": 1, "bytes": size("tuning", 3)},
    }
    assert info["bytes"] == sum(d["bytes"] for d in info["by_kind"].values())
    assert info["other_versions"] == {"entries": 0, "bytes": 0}


# ------------------------------------------------------------------------ the environment


def test_cache_disabled_by_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("TORSH_JIT_CACHE", "0")
    c = get_cache()
    assert isinstance(c, NullCache)
    assert get_cache() is c
    c.put("kernel", key_of(1), b"x")
    assert c.get("kernel", key_of(1)) is None
    assert c.get_entry("kernel", key_of(1)) is None
    assert c.keys("kernel") == []
    assert c.info()["enabled"] is False and c.info()["entries"] == 0
    assert c.clear() == 0 and c.prune(max_bytes=0) == 0
    with c.lock("kernel", key_of(1)) as held:
        assert held is False
    assert not (tmp_path / "c").exists()
    # Turned back on: a real cache, on the next call.
    monkeypatch.setenv("TORSH_JIT_CACHE", "1")
    assert isinstance(get_cache(), Cache)


def test_cache_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.delenv("TORSH_JIT_CACHE", raising=False)
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path / "one"))
    c1 = get_cache()
    assert isinstance(c1, Cache) and c1.root == tmp_path / "one"
    assert get_cache() is c1                       # same object while the env is unchanged
    c1.put("kernel", key_of(1), b"x")
    assert (tmp_path / "one" / f"v{FORMAT_VERSION}" / "kernel").is_dir()
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path / "two"))
    c2 = get_cache()
    assert c2 is not c1 and c2.root == tmp_path / "two"
    assert c2.get("kernel", key_of(1)) is None
    assert Cache().root == tmp_path / "two"        # Cache() alone reads it too


def test_default_dir_is_platformdirs(monkeypatch):
    monkeypatch.delenv("TORSH_JIT_CACHE", raising=False)
    monkeypatch.delenv("TORSH_JIT_CACHE_DIR", raising=False)
    expected = Path(platformdirs.user_cache_dir("torsh-jit"))
    assert Cache().root == expected
    assert get_cache().root == expected


# ----------------------------------------------------------------- corruption and versions


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["payload", "meta", "checksum", "magic", "length"])
def test_corrupted_entry_is_ignored_and_rebuilt(cache, where):
    key = key_of("corrupt")
    payload = b"good payload " * 20
    cache.put("kernel", key, payload)
    path = cache.path("kernel", key)
    offset = {"payload": -1, "meta": 60, "checksum": 30, "magic": 0, "length": 16}[where]
    _flip_byte(path, offset)
    assert cache.get("kernel", key) is None
    assert cache.stats["corrupt"] == 1
    assert not path.exists()                      # deleted, so the next run rebuilds it
    cache.put("kernel", key, payload)
    assert cache.get("kernel", key) == payload


def test_truncated_entry_is_ignored(cache):
    key = key_of("trunc")
    cache.put("kernel", key, b"p" * 1000)
    path = cache.path("kernel", key)
    full = path.read_bytes()
    for cut in (len(full) - 1, 56, 30, 5, 0):
        path.write_bytes(full[:cut])
        assert cache.get("kernel", key) is None, cut
    assert cache.stats["corrupt"] == 5
    # Padding (a longer file than the lengths say) is as wrong as truncation.
    path.write_bytes(full + b"\0")
    assert cache.get("kernel", key) is None
    assert cache.stats["corrupt"] == 6


def test_meta_must_be_a_json_object_naming_the_entry(cache):
    key = key_of("meta")
    path = cache.path("kernel", key)
    path.parent.mkdir(parents=True)
    # A well-formed entry whose meta is a JSON list: checksum fine, still rejected.
    meta = b"[1,2]"
    body = meta + b"payload"
    path.write_bytes(tjc.MAGIC + (1).to_bytes(4, "little") + len(meta).to_bytes(4, "little")
                     + (7).to_bytes(8, "little") + hashlib.sha256(body).digest() + body)
    assert cache.get("kernel", key) is None and cache.stats["corrupt"] == 1
    # An entry copied to another key's place is not that key's entry.
    other = key_of("other")
    cache.put("kernel", other, b"x")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(cache.path("kernel", other), path)
    assert cache.get("kernel", key) is None and cache.stats["corrupt"] == 2
    assert cache.get("kernel", other) == b"x"


def test_expect_names_meta_an_entry_must_carry(cache, caplog):
    key = key_of("expect")
    cache.put("kernel", key, b"of plan a", {"plan": "a", "target": "t"})
    assert cache.get("kernel", key, expect={"plan": "a"}) == b"of plan a"
    with caplog.at_level("WARNING", logger="torsh_jit"):
        assert cache.get("kernel", key, expect={"plan": "b"}) is None
        assert cache.get("kernel", key, expect={"plan": "a", "tools": "x"}) is None  # field absent
    assert "made from something else" in caplog.text and "expected 'b'" in caplog.text
    assert cache.stats["mismatched"] == 2 and cache.stats["corrupt"] == 0
    # A sound entry of something else is not deleted by a read (a caller that only asks
    # whether it exists must not lose it); the rebuild below overwrites it.
    assert cache.get("kernel", key) == b"of plan a"
    made = []
    out = cache.get_or_make("kernel", key, lambda: made.append(1) or b"of plan b", {"target": "t"},
                            expect={"plan": "b"})
    assert out == b"of plan b" and made == [1]
    payload, meta = cache.get_entry("kernel", key)
    assert payload == b"of plan b" and meta["plan"] == "b" and meta["target"] == "t"
    assert cache.get_or_make("kernel", key, lambda: 1 / 0, expect={"plan": "b"}) == b"of plan b"
    assert NullCache().get("kernel", key, expect={"plan": "b"}) is None
    assert NullCache().get_or_make("kernel", key, lambda: b"z", expect={"plan": "b"}) == b"z"


# ---------------------------------------------------------------------------- fixtures


def _place(cache: Cache, fixture: str) -> Path:
    path = cache.path(MANIFEST["kind"], MANIFEST["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / fixture, path)
    return path


def test_fixture_manifest_agrees_with_make_key_and_encoder():
    assert make_key(MANIFEST["key_parts"]) == MANIFEST["key"]
    # The encoder writes exactly the bytes FORMAT.md describes (the fixture was written from
    # the spec by make_fixtures.py, independently of torsh_jit).
    encoded = tjc.encode_entry(MANIFEST["meta"], bytes.fromhex(MANIFEST["payload_hex"]))
    assert encoded == (FIXTURES / "v1_valid.tjc").read_bytes()
    for name, size in MANIFEST["files"].items():
        assert (FIXTURES / name).stat().st_size == size, name


def test_fixture_v1_valid_reads(cache):
    _place(cache, "v1_valid.tjc")
    payload, meta = cache.get_entry(MANIFEST["kind"], MANIFEST["key"])
    assert payload == bytes.fromhex(MANIFEST["payload_hex"])
    assert meta == MANIFEST["meta"]
    assert meta["note"] == "fixture é"
    assert cache.info()["entries"] == 1


@pytest.mark.parametrize("fixture", ["v1_corrupt.tjc", "v1_truncated.tjc"])
def test_fixture_corrupt_is_ignored_and_deleted(cache, fixture):
    path = _place(cache, fixture)
    assert cache.get(MANIFEST["kind"], MANIFEST["key"]) is None
    assert cache.stats["corrupt"] == 1
    assert not path.exists()


def test_fixture_v0_is_ignored_kept_and_pruned(cache):
    # Where v0 put it (no shard directory), and where a v1 reader looks.
    v0_home = cache.root / "v0" / MANIFEST["kind"] / (MANIFEST["key"] + ".tjc")
    v0_home.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "v0_entry.tjc", v0_home)
    in_v1 = _place(cache, "v0_entry.tjc")
    assert cache.get(MANIFEST["kind"], MANIFEST["key"]) is None
    assert cache.stats["corrupt"] == 0            # another version is not corruption ...
    assert in_v1.exists()                         # ... and not ours to delete on read
    assert cache.keys(MANIFEST["kind"]) == [MANIFEST["key"]]
    assert cache.info()["other_versions"]["entries"] == 1
    assert cache.prune() == 2
    assert not in_v1.exists() and not v0_home.exists()
    assert not (cache.root / "v0").exists()


# ------------------------------------------------------------------------ prune and clear


def _aged(cache: Cache, kind: str, key: str, age_s: float) -> None:
    t = time.time() - age_s
    os.utime(cache.path(kind, key), (t, t))


def test_prune_by_size_drops_least_recently_used(cache):
    keys = [key_of(i) for i in range(5)]
    for i, k in enumerate(keys):
        cache.put("kernel", k, bytes([i]) * 1000)
        _aged(cache, "kernel", k, 1000 - i * 100)  # keys[0] oldest ... keys[4] newest
    # Sizes differ by a byte or two (the "created" float in meta), so budget exactly.
    size = {k: cache.path("kernel", k).stat().st_size for k in keys}
    budget = size[keys[0]] + size[keys[3]] + size[keys[4]]
    # Using keys[0] makes it the most recent: it must survive instead of keys[2].
    assert cache.get("kernel", keys[0]) is not None
    assert cache.prune(max_bytes=budget) == 2
    assert cache.keys("kernel") == sorted([keys[0], keys[3], keys[4]])
    assert cache.info()["bytes"] == budget
    assert cache.prune(max_bytes=budget) == 0     # already small enough
    assert cache.prune(max_bytes=0) == 3
    assert cache.info()["entries"] == 0


def test_prune_by_age(cache):
    old, new = key_of("old"), key_of("new")
    cache.put("kernel", old, b"o")
    cache.put("tuning", new, b"n")
    _aged(cache, "kernel", old, 7200)
    assert cache.prune(older_than_s=3600) == 1
    assert cache.get("kernel", old) is None
    assert cache.get("tuning", new) == b"n"
    assert cache.prune() == 0                     # no limits: only foreign/broken entries go


def test_prune_removes_headerless_entries_and_stale_temp_files(cache):
    key = key_of("broken")
    cache.put("kernel", key, b"x" * 100)
    path = cache.path("kernel", key)
    path.write_bytes(path.read_bytes()[:40])
    stale = path.parent / f".{key}.dead.tmp"
    fresh = path.parent / f".{key}.live.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    t = time.time() - 2 * 3600
    os.utime(stale, (t, t))
    assert cache.prune() == 1
    assert not path.exists() and not stale.exists()
    assert fresh.exists()                         # a writer may still be about to rename it


def test_clear_removes_every_version_and_nothing_else(cache):
    cache.put("kernel", key_of(1), b"a")
    cache.put("tuning", key_of(2), b"b")
    v0 = cache.root / "v0" / "kernel" / (key_of(3) + ".tjc")
    v0.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "v0_entry.tjc", v0)
    with cache.lock("kernel", key_of(1)):
        pass
    not_ours = cache.root / "notes.txt"
    not_ours.write_text("keep me")
    (cache.root / "vendor").mkdir()
    assert cache.clear() == 3
    assert cache.info()["entries"] == 0 and cache.info()["other_versions"]["entries"] == 0
    assert sorted(p.name for p in cache.root.iterdir()) == ["notes.txt", "vendor"]
    assert cache.clear() == 0
    cache.put("kernel", key_of(1), b"again")      # still usable afterwards
    assert cache.get("kernel", key_of(1)) == b"again"


# ------------------------------------------------------------------- unwritable directory


def test_unwritable_directory_warns_once_and_carries_on(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("a file, so nothing can be created beneath it")
    c = Cache(afile / "sub")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c.put("kernel", key_of(1), b"x")
        c.put("kernel", key_of(2), b"y")
        with c.lock("kernel", key_of(1)) as held:
            assert held is False
    assert [w.category for w in caught] == [CacheWarning]
    assert "TORSH_JIT_CACHE_DIR" in str(caught[0].message)
    assert c.stats["write_errors"] == 2 and c.stats["writes"] == 0
    assert c.get("kernel", key_of(1)) is None
    assert c.keys("kernel") == []
    assert c.info()["entries"] == 0
    assert c.clear() == 0 and c.prune(max_bytes=0) == 0


# --------------------------------------------------------------------------- concurrency


N_PROCS, N_ITERS, N_KEYS = 4, 50, 3


def _payload(i: int) -> bytes:
    # Big enough (192 KiB) that a non-atomic write would be caught half-way.
    return hashlib.sha256(str(i).encode()).digest() * 6144


def _hammer(root: str, seed: int) -> tuple[dict, list[str]]:
    c = Cache(root)
    bad = []
    for n in range(N_ITERS):
        i = (n + seed) % N_KEYS
        got = c.get("kernel", key_of(i))
        if got is not None and got != _payload(i):
            bad.append(f"key {i}: {len(got)} bytes, wrong content")
        c.put("kernel", key_of(i), _payload(i), meta={"writer": seed})
    return c.stats, bad


def test_concurrent_writers_and_readers(tmp_path):
    root = str(tmp_path / "c")
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(N_PROCS) as pool:
        results = pool.starmap(_hammer, [(root, s) for s in range(N_PROCS)])
    for stats, bad in results:
        assert bad == []
        # With atomic replace a reader never even sees a torn file; a checksum failure here
        # would mean a write was visible before it was complete.
        assert stats["corrupt"] == 0
        assert stats["writes"] == N_ITERS and stats["write_errors"] == 0
    assert sum(s["hits"] for s, _ in results) > 0
    c = Cache(root)
    for i in range(N_KEYS):
        assert c.get("kernel", key_of(i)) == _payload(i)
    leftovers = [p for p in Path(root).rglob("*") if p.is_file() and p.suffix != ".tjc"]
    assert leftovers == []


def _compile_once(root: str, marker: str) -> bool:
    """What a compiler does: lock, look, build if missing. Returns whether it built."""
    c = Cache(root)
    key = key_of("once")
    with c.lock("kernel", key):
        if c.get("kernel", key) is not None:
            return False
        with open(marker, "a") as f:          # a "compile" that takes a while
            f.write("built\n")
        time.sleep(0.2)
        c.put("kernel", key, b"artifact")
        return True


def test_lock_makes_one_process_compile(tmp_path):
    root, marker = str(tmp_path / "c"), str(tmp_path / "marker")
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(N_PROCS) as pool:
        built = pool.starmap(_compile_once, [(root, marker)] * N_PROCS)
    assert sorted(built) == [False] * (N_PROCS - 1) + [True]
    assert Path(marker).read_text() == "built\n"
    assert (tmp_path / "c" / "locks" / "kernel").is_dir()


def test_stale_lock_times_out_with_a_warning(cache):
    key = key_of("stale")
    with cache.lock("kernel", key) as held:
        assert held is True
        with cache.lock("kernel", key) as again:   # same thread: re-entrant, no wait
            assert again is True
    # Another holder (a separate FileLock: flock excludes it even within one process).
    other = filelock.FileLock(cache.root / "locks" / "kernel" / (key + ".lock"))
    other.acquire()
    try:
        t0 = time.monotonic()
        with pytest.warns(CacheWarning, match="held for more than"):
            with cache.lock("kernel", key, timeout=0.2) as held:
                assert held is False
        assert 0.15 < time.monotonic() - t0 < 2       # waited for the timeout, no longer
    finally:
        other.release()
    with cache.lock("kernel", key, timeout=0.2) as held:
        assert held is True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock locks are POSIX's")
def test_the_flock_lock_has_filelocks_semantics(tmp_path):
    """cache/lock.py's FlockLock (filelock's import cost 12-17 ms of each compiling process):
    a thread re-enters its own lock, another thread waits for it, a forked child holds
    nothing its parent held, and it excludes filelock's own lock on the same file."""
    import threading

    from torsh_jit.cache.lock import FlockLock, LockTimeout
    path = tmp_path / "k.lock"
    lk = FlockLock(path)
    lk.acquire(timeout=1)
    lk.acquire(timeout=0)                         # re-entrant: no wait
    got = []

    def other_thread():
        try:
            lk.acquire(timeout=0.2)
            got.append("took it")
            lk.release()
        except LockTimeout:
            got.append("timed out")
    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert got == ["timed out"]
    with pytest.raises(filelock.Timeout):         # filelock's holder is excluded too
        filelock.FileLock(path).acquire(timeout=0.1)
    pid = os.fork()
    if pid == 0:                                  # the child: the parent holds the file
        code = 1
        try:
            lk.acquire(timeout=0.1)               # its copy of the hold was dropped: it waits
        except LockTimeout:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0             # the child waited and timed out
    lk.release()
    lk.release()
    t = threading.Thread(target=other_thread)     # now free: the other thread takes it
    t.start()
    t.join()
    assert got == ["timed out", "took it"]
    other = filelock.FileLock(path)
    other.acquire(timeout=1)                      # and filelock's holder can take it
    try:
        with pytest.raises(LockTimeout):
            lk.acquire(timeout=0.1)
    finally:
        other.release()
