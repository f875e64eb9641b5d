"""Compiling tuning candidates in parallel: a few worker processes, each `python -m
torsh_jit.tune.workers`, that turn LLVM module text into object code.

Why processes of our own and not multiprocessing: a spawned multiprocessing worker re-imports
the user's `__main__` (a script that calls an autotuned kernel at top level would tune again
in every worker), and forking a process that runs the native thread pool and LLVM is unsafe.
These workers import only the compiler and speak a tiny protocol on their pipes:

    request:  u32 length, then JSON {"source": str, "target": str}
    reply:    u8 status (0 ok, 1 error), u64 length, then object code or the error text

Workers never touch the cache: the parent stores what they return (compiler.build(p, obj)),
under the cache's lock, so parallel compilation cannot tear or race an entry.
The parent does not time anything while workers compile (see measure.py), so on a 2-core
machine the compile batch uses both cores and the timing that follows has them to itself.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path


def default_workers() -> int:
    env = os.environ.get("TORSH_JIT_TUNE_WORKERS")
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            pass
    return max(1, min(4, os.cpu_count() or 1))


def _read_exact(f, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise EOFError("worker closed its pipe")
        buf += chunk
    return buf


class _Worker:
    def __init__(self):
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["TORSH_JIT_AUTOTUNE"] = "0"
        self.proc = subprocess.Popen([sys.executable, "-m", "torsh_jit.tune.workers"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)

    def compile(self, source: str, target: str) -> tuple[bool, bytes]:
        req = json.dumps({"source": source, "target": target}).encode()
        self.proc.stdin.write(struct.pack("<I", len(req)) + req)
        self.proc.stdin.flush()
        status, n = struct.unpack("<BQ", _read_exact(self.proc.stdout, 9))
        return status == 0, _read_exact(self.proc.stdout, n)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


class CompilePool:
    """map(jobs) -> results, jobs = [(source, target name)], results = (ok, bytes) per job.
    With n == 0 (or a worker that fails) jobs compile in this process."""

    def __init__(self, n: int | None = None):
        self.n = default_workers() if n is None else n
        self._workers: list[_Worker] = []
        # one map at a time: two would start workers for the same slots and interleave
        # their requests on one worker's pipe (a pool shared by threads tuning at once)
        self._lock = threading.Lock()

    def _local(self, source, target):
        from ..compiler import compile_object
        try:
            return True, compile_object(source, target)
        except Exception as e:     # a failing candidate is a result, not a crash
            return False, f"{type(e).__name__}: {e}".encode()

    def map(self, jobs: list[tuple[str, str]]) -> list[tuple[bool, bytes]]:
        if self.n <= 1 or len(jobs) < 2:
            return [self._local(s, t) for s, t in jobs]
        with self._lock:
            return self._map(jobs)

    def _map(self, jobs):
        while len(self._workers) < min(self.n, len(jobs)):
            try:
                self._workers.append(_Worker())
            except OSError:
                break
        if not self._workers:
            return [self._local(s, t) for s, t in jobs]
        results: list = [None] * len(jobs)
        nxt = iter(range(len(jobs)))
        lock = threading.Lock()

        def drive(w: _Worker):
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                try:
                    results[i] = w.compile(*jobs[i])
                except (OSError, EOFError, ValueError):
                    results[i] = None   # compiled locally below
                    return

        threads = [threading.Thread(target=drive, args=(w,), daemon=True) for w in self._workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._workers = [w for w in self._workers if w.proc.poll() is None]
        return [r if r is not None else self._local(*jobs[i]) for i, r in enumerate(results)]

    def close(self):
        with self._lock:
            for w in self._workers:
                w.close()
            self._workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _serve() -> None:
    from ..compiler import compile_object
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        req = json.loads(_read_exact(inp, struct.unpack("<I", head)[0]).decode())
        try:
            data, status = compile_object(req["source"], req["target"]), 0
        except Exception as e:
            data, status = f"{type(e).__name__}: {e}".encode(), 1
        out.write(struct.pack("<BQ", status, len(data)) + data)
        out.flush()


if __name__ == "__main__":
    _serve()
