"""Values a process computes from the package's own files before it can run even a cached
kernel, kept in the store between processes.

The code hash every key holds (version.code_hash: reads and hashes ~1 MB in 182 files, 3.2-
3.7 ms) and the target table (12 TOML files through tomllib, 2.1 ms) were computed again by
every new process: a third of a warm start (15 ms on a 2-core VM). Each is kept as an entry
of its own kind, under a key made from everything it is computed from (for the code hash,
each file's name, size, times and inode: version.tree_stats), so a changed input is a new
key and the value is computed again; there is nothing to invalidate. Entries are read and
written like any (cache/FORMAT.md: checksummed, atomic, a corrupt one is a miss), by a store
of their own that neither warns nor counts in get_cache().stats (a read-only cache warns
once, for the kernels), and not with TORSH_JIT_CACHE=0, where every process computes them.
Never remote: the stats describe this machine's files.
"""
from __future__ import annotations

import os
from typing import Callable

from .directory import DirectoryStore
from .files import DISABLED_VALUES, ENV_ENABLE, default_root


class _QuietStore(DirectoryStore):
    """A DirectoryStore that does not warn when it cannot write: the kernel store of the same
    directory says so once, and a value that cannot be kept is only computed again."""

    def _warn_once(self, what: str, err: OSError) -> None:
        pass


_stores: dict[str, _QuietStore] = {}


def _store() -> _QuietStore | None:
    if (os.environ.get(ENV_ENABLE) or "").strip().lower() in DISABLED_VALUES:
        return None
    root = str(default_root())
    store = _stores.get(root)
    if store is None:
        store = _stores[root] = _QuietStore(root)
    return store


def remembered(kind: str, key: str, make: Callable[[], bytes]) -> bytes:
    """The bytes stored under (kind, key), or make()'s, stored there for the next process.
    make() raising stores nothing. The environment (TORSH_JIT_CACHE_DIR, TORSH_JIT_CACHE) is
    read on every call, as get_cache reads it."""
    store = _store()
    if store is None:
        return make()
    value = store.get(kind, key)
    if value is None:
        value = make()
        store.put(kind, key, value, {"what": f"torsh-jit {kind}, derived from the package's files"})
    return value
