"""The remote tier of the cache: RedisStore, a Store (protocol.py) on a Redis server.

`TORSH_JIT_REMOTE_CACHE=redis://host:port/db` puts a store shared by every machine that
points at it behind the local directory (store.Cache): a local miss asks the remote, a
remote hit is verified exactly like a local file (magic, format version, checksum, kind,
key and the caller's `expect` fields; nothing is unpickled) and then copied into the local
directory; every local write is also sent to the remote. The remote holds the same bytes
under the same key as the file on disk (`torsh-jit:v<FORMAT>:<kind>:<key>`).

A remote that is down, refuses, or answers slower than `TORSH_JIT_REMOTE_TIMEOUT_S`
(default 1 s) never fails the user's call: one `CacheWarning` says so, and the process
carries on with the local cache only, asking the remote again after `RETRY_S`.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import warnings

from ..errors import CacheWarning
from .files import check_name
from .format import FORMAT_VERSION, BadEntry, read_entry
from .lock import LOCK_TIMEOUT_S, CacheLock
from .protocol import Store, entry_bytes, mismatch, new_stats, no_lock

log = logging.getLogger("torsh_jit")

ENV_URL = "TORSH_JIT_REMOTE_CACHE"
ENV_TIMEOUT = "TORSH_JIT_REMOTE_TIMEOUT_S"
RETRY_S = 30.0          # a remote that failed is left alone this long
PREFIX = "torsh-jit:"


def entry_name(version: int, kind: str, key: str) -> str:
    """The Redis key of the entry (kind, key) of format `version`."""
    return f"{PREFIX}v{version}:{kind}:{key}"


class RedisStore(Store):
    """A Redis server as a Store (the `redis` client from PyPI): one string value per entry,
    its bytes those of the file on disk.

    `keys` and `info` walk the kind's names with SCAN (never KEYS, which blocks the server).
    `prune` removes nothing but entries of other format versions: how much a shared server
    keeps is its own `maxmemory` policy's business (allkeys-lru suits a cache), not one
    client's. `lock` holds nothing: the local store's lock already keeps one machine from
    building twice, and two machines building one entry write the same bytes.
    """

    def __init__(self, url: str, timeout_s: float = 1.0):
        import redis                     # checked by from_env, which says what to install
        self.url = url
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s,
                                            socket_connect_timeout=timeout_s)
        self.stats: dict = new_stats()
        self._down_until = 0.0
        self._warned = False
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    def _call(self, what: str, fn, failed=None):
        """fn(), or `failed` when the server fails (the first failure warns; the server is
        then left alone for RETRY_S)."""
        if time.monotonic() < self._down_until:
            return failed
        try:
            return fn()
        except Exception as e:           # redis' ConnectionError, TimeoutError, ResponseError, ...
            with self._guard:
                self._down_until = time.monotonic() + RETRY_S
                first = not self._warned
                self._warned = True
            if first:
                warnings.warn(
                    f"torsh-jit cache: the remote cache {self.url} failed ({what}: "
                    f"{type(e).__name__}: {e}); going on with the local cache only",
                    CacheWarning, stacklevel=4)
            else:
                log.debug("torsh-jit remote cache %s: %s failed again: %s", self.url, what, e)
            return failed

    def _names(self, pattern: str) -> list[str]:
        return self._call("scan", lambda: [n.decode() for n in
                                           self._client.scan_iter(match=pattern, count=1000)], [])

    def get_entry(self, kind: str, key: str, expect: dict | None = None) -> tuple[bytes, dict] | None:
        check_name(kind, key)
        name = entry_name(FORMAT_VERSION, kind, key)
        data = self._call("get", lambda: self._client.get(name))
        if data is None:
            self.stats["misses"] += 1
            return None
        try:
            meta, payload = read_entry(data, kind, key)
        except BadEntry as e:
            self.stats["misses"] += 1
            self.stats["corrupt"] += 1
            log.warning("torsh-jit cache: remote entry %s is corrupt (%s); deleted it, rebuilding",
                        name, e)
            self.delete(kind, key)
            return None
        wrong = mismatch(meta, expect)
        if wrong:
            self.stats["misses"] += 1
            self.stats["mismatched"] += 1
            log.warning("torsh-jit cache: remote entry %s was made from something else (%s); "
                        "rebuilding it", name, wrong)
            return None
        self.stats["hits"] += 1
        return payload, meta

    def put(self, kind: str, key: str, payload: bytes, meta: dict | None = None) -> None:
        check_name(kind, key)
        data = entry_bytes(kind, key, payload, meta)
        done = self._call("put", lambda: self._client.set(entry_name(FORMAT_VERSION, kind, key), data))
        self.stats["writes" if done else "write_errors"] += 1

    def delete(self, kind: str, key: str) -> bool:
        check_name(kind, key)
        return bool(self._call("delete", lambda: self._client.delete(
            entry_name(FORMAT_VERSION, kind, key))))

    def keys(self, kind: str) -> list[str]:
        check_name(kind, "xx")
        start = len(entry_name(FORMAT_VERSION, kind, ""))
        return sorted(n[start:] for n in self._names(entry_name(FORMAT_VERSION, kind, "*")))

    def lock(self, kind: str, key: str, timeout: float = LOCK_TIMEOUT_S) -> CacheLock:
        check_name(kind, key)
        return no_lock(timeout)

    def _delete_names(self, names: list[str]) -> int:
        return self._call("delete", lambda: self._client.delete(*names), 0) if names else 0

    def prune(self, max_bytes: int | None = None, older_than_s: float | None = None) -> int:
        ours = entry_name(FORMAT_VERSION, "", "")[:-1]          # "torsh-jit:v1:"
        return self._delete_names([n for n in self._names(PREFIX + "v*")
                                   if not n.startswith(ours)])

    def clear(self) -> int:
        return self._delete_names(self._names(PREFIX + "v*"))

    def info(self) -> dict:
        names = self._names(entry_name(FORMAT_VERSION, "*", "*"))
        sizes = self._call("info", lambda: [self._client.strlen(n) for n in names], [0] * len(names))
        by_kind: dict[str, dict] = {}
        for name, size in zip(names, sizes):
            d = by_kind.setdefault(name.split(":")[2], {"entries": 0, "bytes": 0})
            d["entries"] += 1
            d["bytes"] += size
        return {"url": self.url, "enabled": True, "format_version": FORMAT_VERSION,
                "entries": len(names), "bytes": sum(sizes), "by_kind": dict(sorted(by_kind.items()))}


def from_env() -> RedisStore | None:
    """The remote store TORSH_JIT_REMOTE_CACHE names, or None (unset, or unusable: a bad
    URL or a missing client is one warning, never an error in the user's call)."""
    url = os.environ.get(ENV_URL, "").strip()
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        warnings.warn(f"{ENV_URL}={url!r} is not a Redis URL (redis://host:port/db, rediss://..., "
                      "unix:///path.sock); the remote cache is off", CacheWarning, stacklevel=3)
        return None
    text = os.environ.get(ENV_TIMEOUT, "").strip()
    try:
        timeout = float(text) if text else 1.0
        if not 0 < timeout < 3600:
            raise ValueError
    except ValueError:
        warnings.warn(f"{ENV_TIMEOUT}={text!r} is not a number of seconds between 0 and 3600; "
                      "using 1", CacheWarning, stacklevel=3)
        timeout = 1.0
    try:
        return RedisStore(url, timeout)
    except ImportError:
        warnings.warn(f"{ENV_URL} is set but the redis client is not installed: "
                      "pip install 'torsh-jit[redis]'; the remote cache is off",
                      CacheWarning, stacklevel=3)
    except ValueError as e:              # redis' URL parser
        warnings.warn(f"{ENV_URL}={url!r}: {e}; the remote cache is off", CacheWarning,
                      stacklevel=3)
    return None
