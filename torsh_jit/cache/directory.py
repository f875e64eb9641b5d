"""The local directory store (DirectoryStore): each entry one file, in today's layout.

    root / f"v{FORMAT_VERSION}" / kind / key[:2] / (key + ".tjc")

A Store (protocol.py): get_entry verifies a file (and deletes a corrupt one unless a writer
replaced it meanwhile), put writes atomically (temp file, then os.replace), lock holds a
cross-process file lock on one entry, and info, keys, clear and prune maintain the
directory. The bytes of an entry are format.py's; the layout is cache/FORMAT.md's.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from pathlib import Path

from ..errors import CacheWarning
from .files import (ENV_DIR, ENV_ENABLE, SUFFIX, TMP_SUFFIX, check_name, default_root,
                    remove_empty_dirs, remove_in_place, unlink)
from .format import FORMAT_VERSION, BadEntry, ForeignVersion, header_ok, read_entry
from .lock import LOCK_TIMEOUT_S, CacheLock, file_lock
from .protocol import Store, entry_bytes, mismatch, new_stats

# A temp file this old belongs to a writer that died between write and rename.
_STALE_TMP_S = 3600.0
_VERSION_DIR_RE = re.compile(r"v(\d+)")

log = logging.getLogger("torsh_jit")


class DirectoryStore(Store):
    """A directory of entries: root / f"v{FORMAT_VERSION}" / kind / key[:2] / (key + ".tjc").

    The two-character shard keeps directories small; `kind` ("kernel", "tuning", ...) keeps
    `info` and `keys` cheap per kind. Methods never raise for I/O trouble: reads miss,
    writes warn once (see `put`).
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root: Path = Path(root).expanduser() if root is not None else default_root()
        self.stats: dict = new_stats()
        self._warned = False
        # One lock per lock path, so a thread that nests lock() on one key re-enters its
        # own lock instead of waiting on itself. A lock is held per thread, so two threads
        # sharing the object still exclude each other.
        self._locks: dict = {}         # Path -> lock.file_lock(path)
        self._locks_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.root)!r})"

    # paths

    @property
    def version_dir(self) -> Path:
        return self.root / f"v{FORMAT_VERSION}"

    def path(self, kind: str, key: str) -> Path:
        """Where the entry (kind, key) lives (whether or not it exists)."""
        check_name(kind, key)
        return self.version_dir / kind / key[:2] / (key + SUFFIX)

    # reading

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> tuple[bytes, dict] | None:
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
            meta, payload = read_entry(data, kind, key)
        except ForeignVersion:
            # Written by another format version: not corrupt, not ours to delete (prune
            # removes it); a later put overwrites it.
            self.stats["misses"] += 1
            return None
        except BadEntry as e:
            self.stats["misses"] += 1
            self.stats["corrupt"] += 1
            log.warning("torsh-jit cache: %s/%s is corrupt (%s); %s", kind, key, e,
                        "deleted it, rebuilding" if self._discard_if_unchanged(path, st)
                        else "ignoring it")
            return None
        wrong = mismatch(meta, expect)
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
            return unlink(path)
        return False

    def keys(self, kind: str) -> list[str]:
        """Keys of the entries of `kind` in this format version, sorted (files are not read)."""
        check_name(kind, "xx")
        top = self.version_dir / kind
        out = []
        try:
            shards = list(top.iterdir())
        except OSError:
            return []
        for shard in shards:
            with contextlib.suppress(OSError):
                out.extend(p.name[:-len(SUFFIX)] for p in shard.iterdir()
                           if p.name.endswith(SUFFIX))
        return sorted(out)

    # writing

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        """Store `payload` under (kind, key), atomically (see `_write`); `meta` is completed
        by protocol.entry_bytes. No fsync: a crash may lose a fresh entry or leave a short
        file, and the reader's length and checksum checks turn either into a miss."""
        data = entry_bytes(kind, key, payload, meta)
        self._write(self.path(kind, key), key, data)

    def delete(self, kind: str, key: str) -> bool:
        return unlink(self.path(kind, key))

    def _write(self, path: Path, key: str, data: bytes) -> None:
        """data becomes the file at path, atomically; an OSError warns once."""
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A unique temp name in the same directory (same filesystem, so os.replace is a
            # rename). The leading dot and the suffix keep it out of keys() and info().
            fd, tmp = tempfile.mkstemp(prefix="." + key + ".", suffix=TMP_SUFFIX, dir=path.parent)
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
                unlink(Path(tmp))

    def _warn_once(self, what: str, err: OSError) -> None:
        # Once per Cache: a read-only or full disk would otherwise warn on every kernel.
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"torsh-jit cache: {what} ({err}); compiled kernels will not be kept. "
                f"Set {ENV_DIR} to a writable directory, or {ENV_ENABLE}=0 to turn the cache off.",
                CacheWarning, stacklevel=3)

    def lock(self, kind: str, key: str, timeout: float = LOCK_TIMEOUT_S) -> CacheLock:
        """A context manager holding a file lock on (kind, key) across processes, so that one
        process compiles while the others wait and then read its entry. See `CacheLock`."""
        check_name(kind, key)
        path = self.root / "locks" / kind / (key + ".lock")
        with self._locks_guard:
            lk = self._locks.get(path)
            if lk is None:
                lk = self._locks[path] = file_lock(path)
        return CacheLock(lk, timeout, self._warn_once)

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
                if name.endswith(TMP_SUFFIX):
                    temps.append((p, st))
                elif name.endswith(SUFFIX):
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
            removed += sum(unlink(p) for p, _k, _st in entries)
            for p, _st in temps:
                unlink(p)
            remove_empty_dirs(vdir)
        # A lock removed while held only lets a second process compile the same kernel.
        locks = self.root / "locks"
        for dirpath, _d, files in os.walk(locks):
            for name in files:
                if name.endswith(".lock"):
                    unlink(Path(dirpath) / name)
        remove_empty_dirs(locks)
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
                    unlink(p)
            for p, _kind, st in entries:
                if version != FORMAT_VERSION or not header_ok(p, st) or (
                        older_than_s is not None and now - st.st_mtime > older_than_s):
                    removed += unlink(p)
                else:
                    keep.append((p, st))
            remove_empty_dirs(vdir, keep_top=version == FORMAT_VERSION)
        if max_bytes is not None:
            total = sum(st.st_size for _p, st in keep)
            keep.sort(key=lambda e: e[1].st_mtime_ns)      # least recently used first
            for p, st in keep:
                if total <= max_bytes:
                    break
                removed += unlink(p)
                total -= st.st_size
            remove_empty_dirs(self.version_dir, keep_top=True)
        return removed
