"""`@once`: a lazily built, process-wide value, built by one thread while the others wait.

functools.lru_cache does not serialise first calls: threads that miss at once all run the
function and each gets its own result. For things that must exist once per process that
is a crash, not wasted work: a second MCJIT engine takes ownership of the shared target
machine and frees it when dropped ("Target does not support MC emission", segfaults), and
a wasmtime module compiled by one Engine cannot be instantiated in another's store.

A value, once built, is returned by functools.lru_cache's C code without taking the lock
(the double-checked pattern: lru_cache is the unlocked first check, a dict under the lock
the second), so a hot path pays exactly what lru_cache costs. A call that raises caches
nothing: the next call builds again, as with lru_cache. This module imports nothing of
torsh_jit, so every layer (backends, codegen, runtime, tune) can use it.
"""
from __future__ import annotations

import functools
import threading

__all__ = ["once"]


def once(fn):
    """Decorator: fn(*args) is built once per distinct (hashable) arguments, under a lock.

    The wrapper has `.built(*args)` (has that value been built?) and `.clear()` (forget
    every value; the next call builds again)."""
    values: dict = {}
    # reentrant: building one value may build another of the same function (a target
    # machine for another triple); distinct functions have distinct locks, so unrelated
    # slow builds (an LLVM runtime, a wgpu device) do not wait for each other
    lock = threading.RLock()

    def key_of(args, kwargs):
        return (args, tuple(sorted(kwargs.items()))) if kwargs else args

    def build(*args, **kwargs):
        # lru_cache missed: maybe only because another thread is building this very value
        key = key_of(args, kwargs)
        with lock:
            try:
                return values[key]
            except KeyError:
                value = values[key] = fn(*args, **kwargs)
                return value

    cached = functools.lru_cache(maxsize=None)(build)

    def built(*args, **kwargs) -> bool:
        return key_of(args, kwargs) in values

    def clear() -> None:
        with lock:
            values.clear()
            cached.cache_clear()

    functools.update_wrapper(cached, fn)
    cached.built = built
    cached.clear = clear
    return cached
