"""The remote tier of the cache: the `RemoteStore` protocol and its Redis implementation.

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
from typing import Protocol

from ..errors import CacheWarning

log = logging.getLogger("torsh_jit")

ENV_URL = "TORSH_JIT_REMOTE_CACHE"
ENV_TIMEOUT = "TORSH_JIT_REMOTE_TIMEOUT_S"
RETRY_S = 30.0          # a remote that failed is left alone this long


class RemoteStore(Protocol):
    """Opaque bytes by name. Implementations never raise: a failure reads as a miss."""

    url: str

    def get(self, name: str) -> bytes | None: ...
    def put(self, name: str, data: bytes) -> None: ...
    def delete(self, name: str) -> None: ...


def entry_name(version: int, kind: str, key: str) -> str:
    return f"torsh-jit:v{version}:{kind}:{key}"


class RedisStore:
    """A Redis server as a RemoteStore (the `redis` client from PyPI)."""

    def __init__(self, url: str, timeout_s: float = 1.0):
        import redis                     # checked by from_env, which says what to install
        self.url = url
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s,
                                            socket_connect_timeout=timeout_s)
        self._down_until = 0.0
        self._warned = False
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    def _call(self, what: str, fn):
        if time.monotonic() < self._down_until:
            return None
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
            return None

    def get(self, name: str) -> bytes | None:
        return self._call("get", lambda: self._client.get(name))

    def put(self, name: str, data: bytes) -> None:
        self._call("put", lambda: self._client.set(name, data))

    def delete(self, name: str) -> None:
        self._call("delete", lambda: self._client.delete(name))


def from_env() -> RemoteStore | None:
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
