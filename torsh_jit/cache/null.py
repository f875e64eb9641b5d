"""The cache turned off: the null store, which keeps nothing (Numba starts every dispatcher
with one), and NullCache, the pipeline's cache over it, so code that uses the cache never
asks whether there is one.
"""
from __future__ import annotations

from .files import check_name
from .format import FORMAT_VERSION
from .lock import LOCK_TIMEOUT_S, CacheLock
from .protocol import Store, new_stats, no_lock
from .store import Cache


class NullStore(Store):
    """A Store that stores nothing: every get misses, put and delete do nothing, and its lock
    holds nothing (nothing is shared, so there is nothing to wait for)."""

    root = None

    def __init__(self):
        self.stats: dict = new_stats()

    def __repr__(self) -> str:
        return "NullStore()"

    def path(self, kind: str, key: str) -> None:
        check_name(kind, key)
        return None

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> None:
        check_name(kind, key)
        self.stats["misses"] += 1
        return None

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        check_name(kind, key)

    def delete(self, kind: str, key: str) -> bool:
        check_name(kind, key)
        return False

    def keys(self, kind: str) -> list[str]:
        return []

    def lock(self, kind: str, key: str, timeout: float = LOCK_TIMEOUT_S) -> CacheLock:
        check_name(kind, key)
        return no_lock(timeout)

    def info(self) -> dict:
        return {"root": None, "enabled": False, "format_version": FORMAT_VERSION,
                "entries": 0, "bytes": 0, "by_kind": {},
                "other_versions": {"entries": 0, "bytes": 0}}

    def clear(self) -> int:
        return 0

    def prune(self, max_bytes: int | None = None, older_than_s: float | None = None) -> int:
        return 0


class NullCache(Cache):
    """The cache turned off (TORSH_JIT_CACHE=0): the Cache over a NullStore, with no remote.
    Every get misses, so get_or_make builds every time."""

    enabled = False

    def __init__(self):
        super().__init__(local=NullStore())

    def __repr__(self) -> str:
        return "NullCache()"
