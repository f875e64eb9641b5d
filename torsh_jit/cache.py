"""The persistent, versioned, content-addressed store for compiled artifacts and tuning results.

One key, written out in one place (`make_key`): callers put everything that can change an
artifact into one dict (canonical Group, Config, Target with CPU features, package version,
code hash, toolchain versions) and get a sha256 back. The store maps (kind, key) to
bytes plus a small JSON meta dict. The byte layout of an entry is specified in
`cache/FORMAT.md` at the repository root; fixtures of it (and of the older v0 layout) sit
beside it and are loaded by `tests/test_cache.py`.

Guarantees, and how they are kept:

* Readers never see a torn entry: an entry is written whole to a temp file in its own
  directory and moved into place with `os.replace`, which is atomic on POSIX and Windows.
  Two writers of one key both succeed; the last rename wins (and both wrote the same bytes).
* A corrupt entry (bad magic, wrong lengths, checksum mismatch, meta that is not a JSON
  object, a directory in its place) reads as a miss, is logged on the "torsh_jit" logger
  and deleted, so the caller rebuilds it; a directory in a lock's place is replaced too.
  In a read-only directory it is only ignored, on every read. Nothing is ever unpickled
  or evaluated: the payload is opaque bytes, the meta is JSON.
* An entry is trusted by more than its key: a caller that knows what the artifact must be
  made from passes `expect=` (meta fields and their values, e.g. the plan's identity); the
  fields are written with the entry and compared on every read, and an entry that names
  something else reads as a miss (logged on the "torsh_jit" logger), so it is rebuilt and
  overwritten rather than run.
* One `FORMAT_VERSION` is part of the directory name, so a bump leaves old entries unread
  (tinygrad's trick); `prune` and `clear` remove them.
* The cache is an optimisation, never a reason to fail: an unwritable directory warns once
  and the caller carries on without it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import struct
import tempfile
import threading
import time
import warnings
from pathlib import Path

import filelock
import platformdirs

from . import remote
from .errors import CacheWarning

__all__ = [
    "FORMAT_VERSION", "MAGIC", "CacheWarning", "make_key", "encode_entry", "decode_entry",
    "Cache", "NullCache", "get_cache", "remove_in_place",
]

FORMAT_VERSION: int = 1

MAGIC = b"TJCACHE\0"
# magic, format version (u32), meta length (u32), payload length (u64), sha256(meta + payload).
# Little endian, no padding ("<"), so the header is exactly 56 bytes on every platform.
_HEADER = struct.Struct("<8sIIQ32s")
# The first 12 bytes (magic + version) are common to every format version, v0 included, so a
# reader can tell "another version" from "garbage" before it knows the rest of the layout.
_PREFIX = struct.Struct("<8sI")

_SUFFIX = ".tjc"
_TMP_SUFFIX = ".tmp"
# A temp file this old belongs to a writer that died between write and rename.
_STALE_TMP_S = 3600.0
_LOCK_TIMEOUT_S = 60.0

# Kinds and keys become path components: restrict them so that no caller can escape the
# cache root ("..", "/") or collide with the temp and lock file names (keys have no dot).
_KIND_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{2,128}")
_VERSION_DIR_RE = re.compile(r"v(\d+)")

ENV_DIR = "TORSH_JIT_CACHE_DIR"
ENV_ENABLE = "TORSH_JIT_CACHE"
_DISABLED_VALUES = {"0", "false", "off", "no"}

log = logging.getLogger("torsh_jit")




# --------------------------------------------------------------------------------------------
# Keys


_KEY_SCALARS = (str, int, float, bool, type(None))


def _canonical(value, path: str, active: set[int]):
    """A copy of `value` holding only JSON types; TypeError names the first foreign value.

    Types are checked exactly, not with isinstance: an IntEnum or a numpy scalar would
    otherwise hash as whatever json happens to print for it, and two different values could
    share a key. Dict keys must be str, because json turns 1 and "1" into the same key.
    """
    t = type(value)
    if t in _KEY_SCALARS:
        return value
    if t is list or t is tuple or t is dict:
        if id(value) in active:
            raise ValueError(f"make_key: {path} contains itself")
        active.add(id(value))
        try:
            if t is dict:
                out = {}
                for k, v in value.items():
                    if type(k) is not str:
                        raise TypeError(
                            f"make_key: {path} has a key {k!r} of type {type(k).__name__}; "
                            "dict keys must be str")
                    out[k] = _canonical(v, f"{path}[{k!r}]", active)
                return out
            # Tuples and lists hash alike, as they do in JSON.
            return [_canonical(v, f"{path}[{i}]", active) for i, v in enumerate(value)]
        finally:
            active.discard(id(value))
    raise TypeError(
        f"make_key: {path} is a {t.__module__}.{t.__qualname__}; key parts may hold only "
        "str, int, float, bool, None, list, tuple and dict (convert it, e.g. str(target) "
        "or int(n), before building the key)")


def make_key(parts: dict) -> str:
    """sha256 hex digest of the canonical JSON of `parts`.

    Canonical: sorted keys, separators (',', ':'), ASCII only, tuples as lists. So the key
    does not depend on dict insertion order and is stable across Python versions.
    """
    if type(parts) is not dict:
        raise TypeError(f"make_key: parts must be a dict, not {type(parts).__name__}")
    text = json.dumps(_canonical(parts, "parts", set()), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------------------------
# Entry encoding (pure functions: bytes in, bytes out; see cache/FORMAT.md)


class _BadEntry(Exception):
    """The bytes are not a readable entry of this format version (the reason is the message)."""


class _ForeignVersion(_BadEntry):
    """Well-formed magic, but another format version: not ours to judge or delete."""


def encode_entry(meta: dict, payload: bytes) -> bytes:
    """The bytes of one entry file. Meta is written as compact, key-sorted UTF-8 JSON so that
    the same (meta, payload) always gives the same bytes (the fixtures check this)."""
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False).encode("utf-8")
    digest = hashlib.sha256(meta_bytes + payload).digest()
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(meta_bytes), len(payload), digest)
    return header + meta_bytes + payload


def decode_entry(data: bytes) -> tuple[dict, bytes]:
    """(meta, payload) of an entry's bytes; raises _ForeignVersion or _BadEntry."""
    if len(data) < _PREFIX.size:
        raise _BadEntry(f"truncated: {len(data)} bytes, shorter than magic and version")
    magic, version = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise _BadEntry(f"bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise _ForeignVersion(f"format version {version}, this reader knows {FORMAT_VERSION}")
    if len(data) < _HEADER.size:
        raise _BadEntry(f"truncated: {len(data)} bytes, shorter than the {_HEADER.size}-byte header")
    _, _, meta_len, payload_len, digest = _HEADER.unpack_from(data)
    if _HEADER.size + meta_len + payload_len != len(data):
        raise _BadEntry(f"lengths say {_HEADER.size + meta_len + payload_len} bytes, "
                        f"file has {len(data)}")
    body = memoryview(data)[_HEADER.size:]
    if hashlib.sha256(body).digest() != digest:
        raise _BadEntry("checksum mismatch")
    try:
        meta = json.loads(bytes(body[:meta_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _BadEntry(f"meta is not UTF-8 JSON: {e}") from None
    if type(meta) is not dict:
        raise _BadEntry(f"meta is a JSON {type(meta).__name__}, not an object")
    return meta, bytes(body[meta_len:])


def _package_version() -> str:
    """The torsh-jit version, recorded in each entry's meta for `cache info` and debugging
    (the key itself must already include it; the caller puts it in the key parts). From the
    source, not the installed metadata, which an editable install leaves behind."""
    from .version import __version__
    return __version__


def _mismatch(meta: dict, expect: dict | None) -> str:
    """What differs between an entry's meta and what the caller expects ("" when nothing)."""
    if not expect:
        return ""
    return ", ".join(f"{k} is {meta.get(k)!r}, expected {v!r}" for k, v in sorted(expect.items())
                     if meta.get(k) != v)


def _check_name(kind: str, key: str) -> None:
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise ValueError(f"cache kind {kind!r} must match {_KIND_RE.pattern}")
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError(f"cache key {key!r} must match {_KEY_RE.pattern} (use make_key)")


def _unlink(path: Path) -> bool:
    """Remove a file, best effort: another process may have removed or replaced it first."""
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def remove_in_place(path: str | os.PathLike) -> bool:
    """Remove whatever stands where one of the cache's files should be: a file, a symlink, or
    a directory (a whole tree: the name is the cache's, so nothing in it can be anyone
    else's). Best effort, for a read-only directory leaves it; True if it is gone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        return True
    except OSError:
        return False


def _remove_empty_dirs(top: Path, keep_top: bool = False) -> None:
    """Remove empty directories under `top`, deepest first; non-empty ones stay (rmdir fails)."""
    if not top.is_dir():
        return
    for dirpath, _dirnames, _files in os.walk(top, topdown=False):
        if keep_top and Path(dirpath) == top:
            continue
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


# --------------------------------------------------------------------------------------------
# The store


def _default_root() -> Path:
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("torsh-jit"))


def _new_stats() -> dict:
    return {"hits": 0, "misses": 0, "writes": 0, "corrupt": 0, "mismatched": 0, "write_errors": 0,
            "remote_hits": 0, "remote_corrupt": 0, "remote_writes": 0}


class _CacheLock:
    """Context manager around a filelock.FileLock that never deadlocks and never raises.

    `with cache.lock(kind, key) as held:` waits up to `timeout` seconds for other processes
    compiling the same thing. A lock held longer than that is presumed stale (a hung
    process: flock locks of dead processes are released by the kernel), so we warn and go on
    without it; the worst outcome is compiling twice, which the atomic writes make harmless.
    `held` says whether the lock was taken.
    """

    def __init__(self, lock: filelock.FileLock | None, timeout: float, on_error):
        self.filelock = lock
        self.timeout = timeout
        self._on_error = on_error
        self.held = False

    def __enter__(self) -> bool:
        if self.filelock is None:
            return False
        path = Path(self.filelock.lock_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.filelock.acquire(timeout=self.timeout)
            except IsADirectoryError:
                # Something else stands in the lock's place; it is ours, so clear it once
                # (a read-only directory keeps it, and the OSError below says so).
                log.warning("torsh-jit cache: lock %s is a directory; replacing it", path)
                remove_in_place(path)
                self.filelock.acquire(timeout=self.timeout)
            self.held = True
        except filelock.Timeout:
            warnings.warn(
                f"torsh-jit cache: lock {self.filelock.lock_file} was held for more than "
                f"{self.timeout:g} s; going on without it (the same kernel may compile twice)",
                CacheWarning, stacklevel=2)
        except OSError as e:
            self._on_error(f"cannot create lock {self.filelock.lock_file}", e)
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            self.held = False
            self.filelock.release()


class Cache:
    """A directory of entries: root / f"v{FORMAT_VERSION}" / kind / key[:2] / (key + ".tjc").

    The two-character shard keeps directories small; `kind` ("kernel", "tuning", ...) keeps
    `info` and `keys` cheap per kind. Methods never raise for I/O trouble: reads miss,
    writes warn once (see `put`).
    """

    enabled = True

    def __init__(self, root: str | os.PathLike | None = None, remote_store=None):
        self.root: Path = Path(root).expanduser() if root is not None else _default_root()
        self.remote = remote_store       # a remote.RemoteStore behind the directory, or None
        self.stats: dict = _new_stats()
        self._warned = False
        # One FileLock per lock path, so a thread that nests lock() on one key re-enters its
        # own lock instead of waiting on itself. FileLock is thread-local by default, so two
        # threads sharing the object still exclude each other.
        self._locks: dict[Path, filelock.FileLock] = {}
        self._locks_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r}" + (f", remote={self.remote!r})" if self.remote else ")")

    # paths

    @property
    def version_dir(self) -> Path:
        return self.root / f"v{FORMAT_VERSION}"

    def path(self, kind: str, key: str) -> Path:
        """Where the entry (kind, key) lives (whether or not it exists)."""
        _check_name(kind, key)
        return self.version_dir / kind / key[:2] / (key + _SUFFIX)

    # reading

    def get(self, kind: str, key: str, expect: dict | None = None) -> bytes | None:
        """The payload stored under (kind, key), or None (missing, corrupt, another version,
        or its meta differs from `expect` in a field `expect` names)."""
        entry = self.get_entry(kind, key, expect)
        return None if entry is None else entry[0]

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> tuple[bytes, dict] | None:
        """(payload, meta) stored under (kind, key), or None; see `get`. A local miss asks
        the remote store, if there is one; its entry is verified like a file's and copied
        into the directory."""
        entry = self._get_local(kind, key, expect)
        if entry is None and self.remote is not None:
            entry = self._get_remote(kind, key, expect)
        return entry

    def _get_remote(self, kind: str, key: str, expect: dict | None) -> tuple[bytes, dict] | None:
        name = remote.entry_name(FORMAT_VERSION, kind, key)
        data = self.remote.get(name)
        if data is None:
            return None
        try:
            meta, payload = decode_entry(data)
            if meta.get("kind") != kind or meta.get("key") != key:
                raise _BadEntry(f"meta names {meta.get('kind')!r}/{meta.get('key')!r}")
        except _BadEntry as e:
            self.stats["remote_corrupt"] += 1
            log.warning("torsh-jit cache: remote entry %s is corrupt (%s); deleted it, rebuilding",
                        name, e)
            self.remote.delete(name)
            return None
        wrong = _mismatch(meta, expect)
        if wrong:
            log.warning("torsh-jit cache: remote entry %s was made from something else (%s); "
                        "rebuilding it", name, wrong)
            return None
        self.stats["remote_hits"] += 1
        self._write(self.path(kind, key), key, data)
        return payload, meta

    def _get_local(self, kind: str, key: str, expect: dict | None) -> tuple[bytes, dict] | None:
        path = self.path(kind, key)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except IsADirectoryError:
            # Not an entry at all (no writer of ours makes one): corrupt, and cleared so that
            # the rebuild can be stored (os.replace cannot rename a file over a directory).
            self.stats["misses"] += 1
            self.stats["corrupt"] += 1
            log.warning("torsh-jit cache: %s/%s is a directory, not an entry; %s", kind, key,
                        "removed it, rebuilding" if remove_in_place(path) else "ignoring it")
            return None
        except OSError:
            self.stats["misses"] += 1
            return None
        try:
            meta, payload = decode_entry(data)
            if meta.get("kind") != kind or meta.get("key") != key:
                raise _BadEntry(f"meta names {meta.get('kind')!r}/{meta.get('key')!r}")
        except _ForeignVersion:
            # Written by another format version: not corrupt, not ours to delete (prune
            # removes it); a later put overwrites it.
            self.stats["misses"] += 1
            return None
        except _BadEntry as e:
            self.stats["misses"] += 1
            self.stats["corrupt"] += 1
            log.warning("torsh-jit cache: %s/%s is corrupt (%s); %s", kind, key, e,
                        "deleted it, rebuilding" if self._discard_if_unchanged(path, st)
                        else "ignoring it")
            return None
        wrong = _mismatch(meta, expect)
        if wrong:
            # A sound file holding some other artifact: a key that missed an input, or a
            # writer that stored under the wrong key. Left in place: the caller's rebuild
            # overwrites it (and a caller that only asks whether it exists must not delete).
            self.stats["misses"] += 1
            self.stats["mismatched"] += 1
            log.warning("torsh-jit cache: %s/%s was made from something else (%s); rebuilding it",
                        kind, key, wrong)
            return None
        self.stats["hits"] += 1
        # mtime is the "last used" time that prune's LRU order reads; best effort, because a
        # read-only cache is still a useful cache.
        with contextlib.suppress(OSError):
            os.utime(path)
        return payload, meta

    @staticmethod
    def _discard_if_unchanged(path: Path, st: os.stat_result) -> bool:
        """Delete a corrupt entry, unless a writer replaced it since we opened it: a good entry
        renamed into place in between must not be deleted for the old file's sins. True if
        it was deleted."""
        try:
            now = os.stat(path)
        except OSError:
            return False
        if (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) == \
                (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns):
            return _unlink(path)
        return False

    def keys(self, kind: str) -> list[str]:
        """Keys of the entries of `kind` in this format version, sorted (files are not read)."""
        _check_name(kind, "xx")
        top = self.version_dir / kind
        out = []
        try:
            shards = list(top.iterdir())
        except OSError:
            return []
        for shard in shards:
            with contextlib.suppress(OSError):
                out.extend(p.name[:-len(_SUFFIX)] for p in shard.iterdir()
                           if p.name.endswith(_SUFFIX))
        return sorted(out)

    # writing

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        """Store `payload` under (kind, key), atomically.

        `meta` (JSON-serialisable) is stored beside it, with "kind", "key" and "created" set
        here and "package_version" added when the caller gives none. No fsync: a crash may
        lose a fresh entry or leave a short file, and the reader's length and checksum
        checks turn either into a miss.
        """
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"cache payload must be bytes, not {type(payload).__name__}")
        path = self.path(kind, key)
        full_meta = dict(meta or {})
        full_meta.update(kind=kind, key=key, created=time.time())
        full_meta.setdefault("package_version", _package_version())
        data = encode_entry(full_meta, bytes(payload))   # TypeError for bad meta: a caller bug
        self._write(path, key, data)
        if self.remote is not None:
            self.remote.put(remote.entry_name(FORMAT_VERSION, kind, key), data)
            self.stats["remote_writes"] += 1

    def _write(self, path: Path, key: str, data: bytes) -> None:
        """data becomes the file at path, atomically; an OSError warns once."""
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A unique temp name in the same directory (same filesystem, so os.replace is a
            # rename). The leading dot and the suffix keep it out of keys() and info().
            fd, tmp = tempfile.mkstemp(prefix="." + key + ".", suffix=_TMP_SUFFIX, dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                os.replace(tmp, path)
            except IsADirectoryError:
                # a directory where the entry goes (get() clears those; a put without a get
                # may meet one): it is not an entry, so it goes
                remove_in_place(path)
                os.replace(tmp, path)
            tmp = None
            self.stats["writes"] += 1
        except OSError as e:
            self.stats["write_errors"] += 1
            self._warn_once(f"cannot write {path}", e)
        finally:
            if tmp is not None:
                _unlink(Path(tmp))

    def _warn_once(self, what: str, err: OSError) -> None:
        # Once per Cache: a read-only or full disk would otherwise warn on every kernel.
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"torsh-jit cache: {what} ({err}); compiled kernels will not be kept. "
                f"Set {ENV_DIR} to a writable directory, or {ENV_ENABLE}=0 to turn the cache off.",
                CacheWarning, stacklevel=3)

    def get_or_make(self, kind: str, key: str, make, meta: dict | None = None,
                    expect: dict | None = None) -> bytes:
        """The payload under (kind, key); on a miss `make()` builds it under the entry's lock
        (one process builds, the others wait and then read it) and it is stored with `meta`
        and `expect`, the fields every later read checks (see `get`)."""
        payload = self.get(kind, key, expect)
        if payload is None:
            with self.lock(kind, key):
                payload = self.get(kind, key, expect)
                if payload is None:
                    payload = make()
                    self.put(kind, key, payload, {**(meta or {}), **(expect or {})})
        return payload

    def lock(self, kind: str, key: str, timeout: float = _LOCK_TIMEOUT_S) -> _CacheLock:
        """A context manager holding a file lock on (kind, key) across processes, so that one
        process compiles while the others wait and then read its entry. See `_CacheLock`."""
        _check_name(kind, key)
        path = self.root / "locks" / kind / (key + ".lock")
        with self._locks_guard:
            lk = self._locks.get(path)
            if lk is None:
                lk = self._locks[path] = filelock.FileLock(path)
        return _CacheLock(lk, timeout, self._warn_once)

    # maintenance

    def _version_dirs(self) -> list[tuple[int, Path]]:
        """(version, directory) for each v<N> directory under root; other names are not ours."""
        try:
            children = list(self.root.iterdir())
        except OSError:
            return []
        out = []
        for child in children:
            m = _VERSION_DIR_RE.fullmatch(child.name)
            if m and child.is_dir():
                out.append((int(m.group(1)), child))
        return sorted(out)

    @staticmethod
    def _walk(top: Path):
        """(path, kind-directory name, stat) of every entry file under a version directory, and
        separately the temp files; entries of any layout (v0 has no shard level) are found."""
        entries, temps = [], []
        for dirpath, _dirnames, files in os.walk(top):
            for name in files:
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                except OSError:
                    continue
                if name.endswith(_TMP_SUFFIX):
                    temps.append((p, st))
                elif name.endswith(_SUFFIX):
                    kind = p.relative_to(top).parts[0]
                    entries.append((p, kind, st))
        return entries, temps

    def info(self) -> dict:
        """Counts and sizes of this version's entries, in all and per kind; entries of other
        format versions (which prune would remove) are counted apart."""
        by_kind: dict[str, dict] = {}
        other = {"entries": 0, "bytes": 0}
        for version, vdir in self._version_dirs():
            entries, _ = self._walk(vdir)
            for _p, kind, st in entries:
                if version == FORMAT_VERSION:
                    d = by_kind.setdefault(kind, {"entries": 0, "bytes": 0})
                else:
                    d = other
                d["entries"] += 1
                d["bytes"] += st.st_size
        return {
            "root": str(self.root),
            "enabled": True,
            "format_version": FORMAT_VERSION,
            "entries": sum(d["entries"] for d in by_kind.values()),
            "bytes": sum(d["bytes"] for d in by_kind.values()),
            "by_kind": dict(sorted(by_kind.items())),
            "other_versions": other,
        }

    def clear(self) -> int:
        """Remove every entry of every format version (and temp and lock files); returns the
        number of entries removed. Files under root that are not ours are left alone."""
        removed = 0
        for _version, vdir in self._version_dirs():
            entries, temps = self._walk(vdir)
            removed += sum(_unlink(p) for p, _k, _st in entries)
            for p, _st in temps:
                _unlink(p)
            _remove_empty_dirs(vdir)
        # A lock removed while held only lets a second process compile the same kernel.
        locks = self.root / "locks"
        for dirpath, _d, files in os.walk(locks):
            for name in files:
                if name.endswith(".lock"):
                    _unlink(Path(dirpath) / name)
        _remove_empty_dirs(locks)
        return removed

    def prune(self, max_bytes: int | None = None, older_than_s: float | None = None) -> int:
        """Remove entries of other format versions, unreadable ones (wrong magic, version or
        lengths, judged from the header alone), those not used for `older_than_s` seconds,
        then the least recently used until this version's entries total at most `max_bytes`.
        "Used" is the file's mtime, which `get` refreshes. Returns the number removed."""
        now = time.time()
        removed = 0
        keep: list[tuple[Path, os.stat_result]] = []
        for version, vdir in self._version_dirs():
            entries, temps = self._walk(vdir)
            for p, _st in temps:
                if now - _st.st_mtime > _STALE_TMP_S:
                    _unlink(p)
            for p, _kind, st in entries:
                if version != FORMAT_VERSION or not self._header_ok(p, st) or (
                        older_than_s is not None and now - st.st_mtime > older_than_s):
                    removed += _unlink(p)
                else:
                    keep.append((p, st))
            _remove_empty_dirs(vdir, keep_top=version == FORMAT_VERSION)
        if max_bytes is not None:
            total = sum(st.st_size for _p, st in keep)
            keep.sort(key=lambda e: e[1].st_mtime_ns)      # least recently used first
            for p, st in keep:
                if total <= max_bytes:
                    break
                removed += _unlink(p)
                total -= st.st_size
            _remove_empty_dirs(self.version_dir, keep_top=True)
        return removed

    @staticmethod
    def _header_ok(path: Path, st: os.stat_result) -> bool:
        """Magic, version and lengths agree with the file size (no checksum: that needs the
        whole file, and get() catches it on the next read anyway)."""
        try:
            with open(path, "rb") as f:
                head = f.read(_HEADER.size)
        except OSError:
            return True     # unreadable now is not proof of corruption; leave it
        if len(head) < _HEADER.size:
            return False
        magic, version, meta_len, payload_len, _ = _HEADER.unpack(head)
        return (magic == MAGIC and version == FORMAT_VERSION
                and _HEADER.size + meta_len + payload_len == st.st_size)


class NullCache:
    """The cache turned off (TORSH_JIT_CACHE=0): same interface, stores nothing, every get
    misses. Code that uses the cache never has to ask whether there is one."""

    enabled = False
    root = None

    def __init__(self):
        self.stats: dict = _new_stats()

    def __repr__(self) -> str:
        return "NullCache()"

    def path(self, kind: str, key: str) -> None:
        _check_name(kind, key)
        return None

    def get(self, kind: str, key: str, expect: dict | None = None) -> None:
        _check_name(kind, key)
        self.stats["misses"] += 1
        return None

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> None:
        return self.get(kind, key)

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        _check_name(kind, key)

    def keys(self, kind: str) -> list[str]:
        return []

    get_or_make = Cache.get_or_make          # builds every time: get() always misses

    def lock(self, kind: str, key: str, timeout: float = _LOCK_TIMEOUT_S) -> _CacheLock:
        # Nothing is shared, so there is nothing to wait for.
        _check_name(kind, key)
        return _CacheLock(None, timeout, None)

    def info(self) -> dict:
        return {"root": None, "enabled": False, "format_version": FORMAT_VERSION,
                "entries": 0, "bytes": 0, "by_kind": {},
                "other_versions": {"entries": 0, "bytes": 0}}

    def clear(self) -> int:
        return 0

    def prune(self, max_bytes: int | None = None, older_than_s: float | None = None) -> int:
        return 0


_current: tuple[tuple[str | None, str | None], Cache | NullCache] | None = None
_current_guard = threading.Lock()


def get_cache() -> Cache | NullCache:
    """The process-wide cache: NullCache when TORSH_JIT_CACHE=0 (or false/off/no), else
    Cache() at TORSH_JIT_CACHE_DIR or the platform's user cache directory.

    The environment is read on every call (tests and notebooks change it at run time), and
    the same object comes back while it is unchanged, so its stats accumulate.
    """
    global _current
    env = (os.environ.get(ENV_ENABLE), os.environ.get(ENV_DIR), os.environ.get(remote.ENV_URL),
           os.environ.get(remote.ENV_TIMEOUT))
    with _current_guard:
        if _current is None or _current[0] != env:
            enabled = (env[0] or "").strip().lower() not in _DISABLED_VALUES
            _current = (env, Cache(remote_store=remote.from_env()) if enabled else NullCache())
        return _current[1]
