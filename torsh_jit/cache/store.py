"""The cache the pipeline uses (Cache): a local Store, with an optional remote Store as its
second tier.

get, get_entry and get_or_make read the local store first; a local miss asks the remote,
whose entry the remote store has verified like a file, and a hit is copied into the local
store (same meta, so the same bytes). put writes the local store and sends the same entry
to the remote. lock, keys, info, clear and prune are the local store's: the remote is
shared, and one machine does not clear or prune a fleet's entries. A remote that is down or
slow warns once and is skipped (remote.RedisStore), never an exception in the user's call.
`stats` counts the local store's hits, misses, writes, corrupt, mismatched and write_errors,
and the remote's hits, corrupt entries and writes as remote_hits, remote_corrupt and
remote_writes.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .directory import DirectoryStore
from .lock import LOCK_TIMEOUT_S, CacheLock
from .protocol import STAT_NAMES, Store

# what `stats` reports of the remote store, under which name
_REMOTE_STATS = {"remote_hits": "hits", "remote_corrupt": "corrupt", "remote_writes": "writes"}


class Cache(Store):
    """The local store (a DirectoryStore at `root` unless `local` is given) and, when
    `remote_store` is given, a second tier behind it; a Store itself (`get` is Store's).
    Methods never raise for I/O trouble: reads miss, writes warn once."""

    enabled = True

    def __init__(self, root: str | os.PathLike | None = None, remote_store: Store | None = None,
                 local: Store | None = None):
        self.local: Store = local if local is not None else DirectoryStore(root)
        self.remote = remote_store

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r}" + (f", remote={self.remote!r})" if self.remote else ")")

    @property
    def root(self) -> Path | None:
        """The local store's directory (None for a store without one)."""
        return self.local.root

    def path(self, kind: str, key: str) -> Path | None:
        """Where the local entry (kind, key) lives (whether or not it exists)."""
        return self.local.path(kind, key)

    @property
    def stats(self) -> dict:
        out = {name: self.local.stats[name] for name in STAT_NAMES}
        remote = self.remote.stats if self.remote is not None else {}
        out.update({name: remote.get(of, 0) for name, of in _REMOTE_STATS.items()})
        return out

    # reading

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> tuple[bytes, dict] | None:
        """(payload, meta) stored under (kind, key), or None: missing, corrupt, another format
        version, or its meta differs from `expect` in a field `expect` names. A local miss asks
        the remote store, if there is one; its verified entry is copied into the local one."""
        entry = self.local.get_entry(kind, key, expect)
        if entry is None and self.remote is not None:
            entry = self.remote.get_entry(kind, key, expect)
            if entry is not None:
                self.local.put(kind, key, *entry)
        return entry

    def keys(self, kind: str) -> list[str]:
        """Keys of the local entries of `kind` in this format version, sorted."""
        return self.local.keys(kind)

    # writing

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        """Store `payload` under (kind, key), atomically, locally and in the remote.

        `meta` (JSON-serialisable) is stored beside it, with "kind", "key" and "created" set
        here and "package_version" added when the caller gives none.
        """
        full_meta = {**(meta or {}), "created": time.time()}
        self.local.put(kind, key, payload, full_meta)
        if self.remote is not None:
            self.remote.put(kind, key, payload, full_meta)

    def delete(self, kind: str, key: str) -> bool:
        """Remove the entry locally and in the remote; True if either held it."""
        gone = self.local.delete(kind, key)
        return (self.remote is not None and self.remote.delete(kind, key)) or gone

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

    def lock(self, kind: str, key: str, timeout: float = LOCK_TIMEOUT_S) -> CacheLock:
        """A context manager holding the local store's lock on (kind, key) across processes,
        so that one process compiles while the others wait and then read its entry. See
        `CacheLock`."""
        return self.local.lock(kind, key, timeout)

    # maintenance (local only)

    def info(self) -> dict:
        """The local store's counts and sizes, in all and per kind (`Store.info`)."""
        return self.local.info()

    def clear(self) -> int:
        """Remove every local entry of every format version; returns how many."""
        return self.local.clear()

    def prune(self, max_bytes: int | None = None, older_than_s: float | None = None) -> int:
        """Prune the local store (`DirectoryStore.prune`); returns the number removed."""
        return self.local.prune(max_bytes, older_than_s)
