"""The cache turned off: the null store, which keeps nothing (Numba starts every dispatcher
with one), so code that uses the cache never asks whether there is one.
"""
from __future__ import annotations

from .files import check_name
from .format import FORMAT_VERSION
from .lock import LOCK_TIMEOUT_S, CacheLock
from .store import Cache, new_stats


class NullCache:
    """The cache turned off (TORSH_JIT_CACHE=0): same interface, stores nothing, every get
    misses. Code that uses the cache never has to ask whether there is one."""

    enabled = False
    root = None

    def __init__(self):
        self.stats: dict = new_stats()

    def __repr__(self) -> str:
        return "NullCache()"

    def path(self, kind: str, key: str) -> None:
        check_name(kind, key)
        return None

    def get(self, kind: str, key: str, expect: dict | None = None) -> None:
        check_name(kind, key)
        self.stats["misses"] += 1
        return None

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> None:
        return self.get(kind, key)

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        check_name(kind, key)

    def keys(self, kind: str) -> list[str]:
        return []

    get_or_make = Cache.get_or_make          # builds every time: get() always misses

    def lock(self, kind: str, key: str, timeout: float = LOCK_TIMEOUT_S) -> CacheLock:
        # Nothing is shared, so there is nothing to wait for.
        check_name(kind, key)
        return CacheLock(None, timeout, None)

    def info(self) -> dict:
        return {"root": None, "enabled": False, "format_version": FORMAT_VERSION,
                "entries": 0, "bytes": 0, "by_kind": {},
                "other_versions": {"entries": 0, "bytes": 0}}

    def clear(self) -> int:
        return 0

    def prune(self, max_bytes: int | None = None, older_than_s: float | None = None) -> int:
        return 0
