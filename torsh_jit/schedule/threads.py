"""How many threads a CPU kernel launch may use: the number the CPU schedules plan for
(a grain per thread) and the LLVM backend's pools are sized by.
TORSH_JIT_NUM_THREADS sets it (default: the CPUs this process may use).
"""
from __future__ import annotations

import os
import warnings


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not Linux
        return max(1, os.cpu_count() or 1)


_warned: set = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        warnings.warn(text, RuntimeWarning, stacklevel=3)


def num_threads() -> int:
    """The pool size: TORSH_JIT_NUM_THREADS, else the CPUs this process may use. A value that
    is not a whole number, or more than 4 threads a CPU (each one a Python thread), warns once
    naming the variable and falls back (or is capped)."""
    cpus = _cpus()
    env = os.environ.get("TORSH_JIT_NUM_THREADS", "").strip()
    if not env:
        return cpus
    try:
        n = int(env)
    except ValueError:
        _warn_once(f"TORSH_JIT_NUM_THREADS={env!r} is not a whole number: using {cpus} "
                   f"threads (the CPUs this process may use)")
        return cpus
    if n < 1:
        _warn_once(f"TORSH_JIT_NUM_THREADS={n} is below 1: using 1 thread")
        return 1
    if n > 4 * cpus:
        _warn_once(f"TORSH_JIT_NUM_THREADS={n} is more than 4 threads for each of this "
                   f"process's {cpus} CPUs: using {4 * cpus}")
        return 4 * cpus
    return n
