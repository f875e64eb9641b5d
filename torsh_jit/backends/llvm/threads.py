"""A persistent pool of worker threads that run native kernels on sub-ranges.

Kernels are ctypes function pointers, which release the GIL while they run, so
Python threads give real parallelism. Workers wait on their own lock; a launch
hands each one a range and runs the first range on the calling thread.
Their size is schedule.threads.num_threads().
"""
from __future__ import annotations

import ctypes
import threading

from ...schedule.threads import num_threads


class _Worker(threading.Thread):
    def __init__(self, pool):
        super().__init__(daemon=True, name="torsh-jit-worker")
        self.pool = pool
        self.go = threading.Lock()
        self.go.acquire()
        self.job = None

    def run(self):
        while True:
            self.go.acquire()
            fn, table, a, b = self.job
            try:
                fn(table, a, b)
            finally:
                self.pool._done()


class ThreadPool:
    def __init__(self, n: int):
        self.n = n
        self.workers = [_Worker(self) for _ in range(n - 1)]
        for w in self.workers:
            w.start()
        self._launch = threading.Lock()     # one parallel launch at a time
        self._left = 0
        self._cv = threading.Condition(threading.Lock())

    def _done(self):
        with self._cv:
            self._left -= 1
            if self._left == 0:
                self._cv.notify()

    def run(self, fn, table: int, total: int, grain: int, align: int = 1):
        """Run fn(table, start, end) over [0, total), split in at most n ranges of >= grain."""
        parts = min(self.n, max(1, total // max(grain, 1)))
        if parts <= 1 or not self._launch.acquire(blocking=False):
            fn(table, 0, total)
            return
        try:
            step = -(-total // parts)
            step = -(-step // align) * align
            ranges = [(i * step, min(total, (i + 1) * step)) for i in range(parts)]
            ranges = [r for r in ranges if r[0] < r[1]]
            with self._cv:
                self._left = len(ranges) - 1
            for w, (a, b) in zip(self.workers, ranges[1:]):
                w.job = (fn, table, a, b)
                w.go.release()
            fn(table, *ranges[0])
            with self._cv:
                while self._left:
                    self._cv.wait()
        finally:
            self._launch.release()


class NativePool:
    """The pool in native code (templates/llvm/runtime.ll.j2): a launch is one foreign call
    that releases the GIL, wakes spinning workers and waits for them."""

    _LAUNCH_T = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)

    def __init__(self, n: int):
        from .build import runtime
        addrs = runtime()
        start = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(addrs["tj_pool_start"])
        self.n = int(start(n))
        self.launch = self._LAUNCH_T(addrs["tj_pool_launch"])


_native: NativePool | None = None


def native_pool() -> NativePool | None:
    """The native pool (created once per process with num_threads() threads), or None
    when it cannot be built here; callers then use the Python pool."""
    global _native
    if _native is None:
        with _pool_lock:
            if _native is None:
                try:
                    _native = NativePool(num_threads())
                except Exception as e:    # no pthreads in this process: the Python pool works
                    import warnings
                    warnings.warn(f"torsh-jit: native thread pool unavailable ({e}); "
                                  "using Python threads")
                    _native = False
    return _native or None


_pool: ThreadPool | None = None
_pool_lock = threading.Lock()


def pool() -> ThreadPool:
    """The process's pool, created on first use with num_threads() threads (hot path)."""
    p = _pool
    if p is not None:
        return p
    return set_num_threads(num_threads())


def set_num_threads(n: int) -> ThreadPool:
    """Replace the pool with one of n threads (the old workers stay idle)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.n != n:
            _pool = ThreadPool(max(1, int(n)))
        return _pool
