"""The Store protocol: what every place that keeps cache entries implements (the local
directory, the null store, a Redis server), and the few helpers its implementations share.

An entry is (kind, key) -> payload bytes plus a JSON meta dict, stored as the bytes of
format.py (cache/FORMAT.md). Every store guarantees:

* A hit is verified: format version, sha256, the meta's kind and key, and every field of
  the caller's `expect` (an entry whose meta names something else is a miss, left for the
  caller's rebuild to overwrite). A corrupt entry is a miss, and deleted where that is
  safe. Nothing is ever unpickled or evaluated: the payload is opaque, the meta is JSON.
* A store that fails (a read-only or full disk, a server that is down or slow) degrades:
  reads miss, writes are dropped, one `CacheWarning` says so. It never raises into the
  user's call; only a caller's own mistakes raise (a bad kind or key: ValueError; a payload
  that is not bytes or meta that is not JSON: TypeError).
* `stats` counts what happened, under the names of `new_stats`.
"""
from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from ..version import __version__
from .format import encode_entry
from .lock import LOCK_TIMEOUT_S, CacheLock

STAT_NAMES = ("hits", "misses", "writes", "corrupt", "mismatched", "write_errors")


def new_stats() -> dict:
    """A store's counters, all zero."""
    return dict.fromkeys(STAT_NAMES, 0)


@runtime_checkable
class Store(Protocol):
    """Entries by (kind, key); see the module docstring for what every store guarantees.
    The stores subclass it, and so share `get`."""

    stats: dict

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> tuple[bytes, dict] | None:
        """(payload, meta) stored under (kind, key), or None: missing, corrupt, another
        format version, or its meta differs from `expect` in a field `expect` names."""

    def get(self, kind: str, key: str, expect: dict | None = None) -> bytes | None:
        """The payload of `get_entry`, or None."""
        entry = self.get_entry(kind, key, expect)
        return None if entry is None else entry[0]

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        """Store `payload` under (kind, key), replacing what was there; whole or not at all.
        `meta` is completed by `entry_bytes` (kind and key set; created and package_version
        added when missing), so two stores given the same meta hold the same bytes."""

    def delete(self, kind: str, key: str) -> bool:
        """Remove the entry; True if this call removed one."""

    def keys(self, kind: str) -> list[str]:
        """The keys of the entries of `kind` in this format version, sorted (not verified)."""

    def prune(self, max_bytes: int | None = None, older_than_s: float | None = None) -> int:
        """Remove what is stale (another format version, unreadable, unused for
        `older_than_s` seconds, the least recently used beyond `max_bytes`), as far as the
        store can tell; returns the number of entries removed."""

    def clear(self) -> int:
        """Remove every entry of every format version; returns how many."""

    def lock(self, kind: str, key: str, timeout: float = LOCK_TIMEOUT_S) -> CacheLock:
        """A context manager that lets one process build (kind, key) while the others wait;
        a store with nothing to share returns one that holds nothing (`no_lock`)."""

    def info(self) -> dict:
        """Counts and sizes: entries, bytes, by_kind ({kind: {entries, bytes}}) and
        format_version at least."""


def no_lock(timeout: float = LOCK_TIMEOUT_S) -> CacheLock:
    """The lock of a store that needs none: entered, it holds nothing and waits for nothing."""
    return CacheLock(None, timeout, None)


def entry_bytes(kind: str, key: str, payload: bytes, meta: dict | None) -> bytes:
    """The bytes `put` stores: `meta` with kind and key set, and created (now) and
    package_version (this torsh-jit's; the key itself must already include it) added when
    the caller gives none."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"cache payload must be bytes, not {type(payload).__name__}")
    full = dict(meta or {})
    full.update(kind=kind, key=key)
    full.setdefault("created", time.time())
    full.setdefault("package_version", __version__)
    return encode_entry(full, bytes(payload))      # TypeError for bad meta: a caller bug


def mismatch(meta: dict, expect: dict | None) -> str:
    """What differs between an entry's meta and what the caller expects ("" when nothing)."""
    if not expect:
        return ""
    return ", ".join(f"{k} is {meta.get(k)!r}, expected {v!r}" for k, v in sorted(expect.items())
                     if meta.get(k) != v)
