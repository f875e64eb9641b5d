"""The persistent, versioned, content-addressed store for compiled artifacts and tuning results.

Each kind of key is written out in one place (keys.py: `plan_key`, `artifact_key`,
`tuning_key`, ...): `make_key` of one dict of everything that can change the artifact
(canonical Group, Config, Target with CPU features, package version, code hash, toolchain
versions), a sha256. The store maps (kind, key) to bytes plus a small JSON meta dict. The
byte layout of an entry is specified in `cache/FORMAT.md` at the repository root (format.py
writes and reads it); fixtures of it (and of the older v0 layout) sit beside it and are
loaded by `tests/test_cache.py`.

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

The package: keys.py (the keys), format.py (an entry's bytes), files.py (names and
removal), lock.py (the cross-process lock), protocol.py (the Store protocol every store
implements), directory.py (the local directory store, DirectoryStore), null.py (the null
store, NullStore, and NullCache), remote.py (RedisStore, the remote tier), store.py (Cache:
a local store with an optional remote one behind it), memo.py (values derived from the
package's files, the code hash and the target table, kept between processes); `get_cache`,
here, is the process-wide one.
"""
from __future__ import annotations

import os
import threading

from ..errors import CacheWarning
from . import remote
from .files import DISABLED_VALUES, ENV_DIR, ENV_ENABLE, default_root, remove_in_place
from .format import FORMAT_VERSION, MAGIC, decode_entry, encode_entry
from .keys import (artifact_key, code_hash, identity, make_key, plan_identity, plan_key, runtime_key,
                   tuning_key)
from .directory import DirectoryStore
from .null import NullCache, NullStore
from .protocol import Store
from .store import Cache

__all__ = [
    "FORMAT_VERSION", "MAGIC", "CacheWarning", "make_key", "encode_entry", "decode_entry",
    "Cache", "NullCache", "Store", "DirectoryStore", "NullStore", "get_cache", "remove_in_place", "default_root", "ENV_DIR", "ENV_ENABLE",
    "identity", "plan_identity", "plan_key", "artifact_key", "runtime_key", "tuning_key", "code_hash",
]

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
            enabled = (env[0] or "").strip().lower() not in DISABLED_VALUES
            _current = (env, Cache(remote_store=remote.from_env()) if enabled else NullCache())
        return _current[1]
