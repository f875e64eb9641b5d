"""The cache's cross-process lock on one entry: wait a while for another process compiling the
same thing, and never deadlock or raise.

On POSIX the lock is flock(2) on the entry's lock file, taken here (FlockLock) as
filelock.UnixFileLock takes it (so the two exclude each other): importing filelock 4.3 took
12-17 ms of every process that compiled a kernel (a 2-core VM), the lock itself a few
system calls. Elsewhere (Windows) filelock's FileLock serves.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import warnings
import weakref
from pathlib import Path

from ..errors import CacheWarning
from .files import remove_in_place

try:
    import fcntl
except ImportError:                       # Windows: filelock, imported when a lock is made
    fcntl = None

LOCK_TIMEOUT_S = 60.0
_POLL_S = 0.05                            # filelock's poll interval too

log = logging.getLogger("torsh_jit")


class LockTimeout(Exception):
    """The lock was held by another holder for longer than the timeout."""


class FlockLock:
    """An exclusive flock(2) on one file, with filelock.FileLock's semantics: each thread
    holds it on its own descriptor (so two threads exclude each other), re-entrantly (a
    thread that nests it does not wait on itself); the kernel releases it when its
    holder dies, so no lock outlives a process."""

    _all: "weakref.WeakSet[FlockLock]" = weakref.WeakSet()

    def __init__(self, path: str | os.PathLike):
        self.lock_file = str(path)
        self._held = threading.local()        # fd, count: this thread's hold
        FlockLock._all.add(self)

    def acquire(self, timeout: float) -> None:
        held = self._held
        if getattr(held, "count", 0):
            held.count += 1
            return
        # as filelock opens it; a directory in the file's place raises IsADirectoryError
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(self.lock_file) from None
                    time.sleep(_POLL_S)
        except BaseException:
            os.close(fd)
            raise
        held.fd, held.count = fd, 1

    def release(self) -> None:
        held = self._held
        held.count -= 1
        if held.count == 0:
            fd, held.fd = held.fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @classmethod
    def _forget_in_child(cls) -> None:
        # a forked child shares its parent's locked descriptions: it drops its copies of
        # the descriptors (closing a copy does not unlock the parent's) and holds nothing
        for lk in list(cls._all):
            fd = getattr(lk._held, "fd", None)
            lk._held = threading.local()
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


if fcntl is not None and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=FlockLock._forget_in_child)


class _FileLock:
    """filelock.FileLock with FlockLock's interface (where there is no flock)."""

    def __init__(self, path):
        import filelock
        self._lock = filelock.FileLock(path)
        self.lock_file = self._lock.lock_file

    def acquire(self, timeout: float) -> None:
        import filelock
        try:
            self._lock.acquire(timeout=timeout)
        except LockTimeout:
            raise LockTimeout(self.lock_file) from None

    def release(self) -> None:
        self._lock.release()


def file_lock(path: str | os.PathLike):
    """The lock on `path` that CacheLock takes: FlockLock, or filelock's without flock."""
    return FlockLock(path) if fcntl is not None else _FileLock(path)


class CacheLock:
    """Context manager around a file_lock that never deadlocks and never raises.

    `with cache.lock(kind, key) as held:` waits up to `timeout` seconds for other processes
    compiling the same thing. A lock held longer than that is presumed stale (a hung
    process: flock locks of dead processes are released by the kernel), so we warn and go on
    without it; the worst outcome is compiling twice, which the atomic writes make harmless.
    `held` says whether the lock was taken.
    """

    def __init__(self, lock, timeout: float, on_error):
        self.filelock = lock                  # a file_lock(), or None: nothing to hold
        self.timeout = timeout
        self._on_error = on_error
        self.held = False

    def __enter__(self) -> bool:
        if self.filelock is None:
            return False
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
        except LockTimeout:
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
