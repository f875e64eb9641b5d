"""The cache's cross-process lock on one entry: wait a while for another process compiling the
same thing, and never deadlock or raise.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from ..errors import CacheWarning
from .files import remove_in_place

LOCK_TIMEOUT_S = 60.0

log = logging.getLogger("torsh_jit")


class CacheLock:
    """Context manager around a filelock.FileLock that never deadlocks and never raises.

    `with cache.lock(kind, key) as held:` waits up to `timeout` seconds for other processes
    compiling the same thing. A lock held longer than that is presumed stale (a hung
    process: flock locks of dead processes are released by the kernel), so we warn and go on
    without it; the worst outcome is compiling twice, which the atomic writes make harmless.
    `held` says whether the lock was taken.
    """

    def __init__(self, lock, timeout: float, on_error):
        # lock: a filelock.FileLock (imported by whoever makes one: directory.py), or None
        self.filelock = lock
        self.timeout = timeout
        self._on_error = on_error
        self.held = False

    def __enter__(self) -> bool:
        if self.filelock is None:
            return False
        import filelock                   # loaded already: the lock is one of its FileLocks
        path = Path(self.filelock.lock_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.filelock.acquire(timeout=self.timeout)
            except IsADirectoryError:
                # Something else stands in the lock's place; it is ours, so clear it once
                # (a read-only directory keeps it, and the OSError below says so).
                log.warning("torsh-jit cache: lock %s is a directory; replacing it", path)
                remove_in_place(path)
                self.filelock.acquire(timeout=self.timeout)
            self.held = True
        except filelock.Timeout:
            warnings.warn(
                f"torsh-jit cache: lock {self.filelock.lock_file} was held for more than "
                f"{self.timeout:g} s; going on without it (the same kernel may compile twice)",
                CacheWarning, stacklevel=2)
        except OSError as e:
            self._on_error(f"cannot create lock {self.filelock.lock_file}", e)
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            self.held = False
            self.filelock.release()
