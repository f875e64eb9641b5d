"""Runners that execute a program per call: the buffers go through a job file.

A runner's executable (harness.c linked with the module) maps a job file in /dev/shm that
the Python side fills with the inputs (for a strided view, the whole byte span it touches,
so the kernel's strides stay valid relative to its data pointer) and reads the outputs
back from. qemu-user (qemu.py) and the MSL harness (msl.py) differ only in the command
that runs the program.
"""
from __future__ import annotations

import ctypes
import itertools
import mmap
import os
import struct
import subprocess
import threading

import numpy as np

from ... import errors as E
from . import byte_span, copy_outputs, remove_files, scratch_dir

_HEADER = 32          # magic, n, vector bits, status; then n offsets (harness.c)
_counter = itertools.count()


class JobFunction:
    """A program run once per call over a job file; `.run` as CpuFunction's. Subclasses give
    `command(job)` and may check what the harness probed (`check_probe`)."""

    def __init__(self, plan, exe: bytes, key: str):
        t = plan.target
        self.plan = plan
        self.target = t
        self.exe = os.path.join(scratch_dir(), f"{key[:24]}.exe")
        if not os.path.exists(self.exe):
            tmp = f"{self.exe}.{os.getpid()}.{threading.get_ident()}"
            with open(tmp, "wb") as f:
                f.write(exe)
            os.chmod(tmp, 0o755)
            os.replace(tmp, self.exe)
        b = plan.part.buffers
        self.n_inputs = b.n_inputs
        self.n_outputs = len(b.outputs)
        # the buffers copied in: the inputs, and a symbolic plan's size table (the last)
        self.copy_in = tuple(range(b.n_inputs)) + ((plan.n_buffers - 1,) if plan.symbols else ())

    def bind(self, values: dict):
        """At a symbolic plan's sizes: the same program (the kernels read the size table)."""
        return self

    def command(self, job: str) -> list[str]:
        return [self.exe, job]

    def check_probe(self, bits: int) -> None:
        """What the harness wrote in the job's vector-bits field (0: nothing probed)."""

    def run(self, buffers: tuple) -> None:
        """buffers: every input (arrays, 0-d arrays for scalars), output and temporary, in order."""
        n = len(buffers)
        pos = (_HEADER + 8 * n + 63) // 64 * 64
        offsets, spans = [], []
        for a in buffers:
            lo, size = byte_span(a)
            addr = a.__array_interface__["data"][0]
            start = pos + (addr + lo) % 64          # keep the array's alignment class
            offsets.append(start - lo)
            spans.append((start, addr + lo, size))
            pos = (start + size + 63) // 64 * 64
        job = os.path.join(scratch_dir(), f"job-{os.getpid()}-{threading.get_ident()}-{next(_counter)}")
        fd = os.open(job, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        mm = view = None
        try:
            os.ftruncate(fd, pos)
            mm = mmap.mmap(fd, pos)
            struct.pack_into(f"<8sQQQ{n}Q", mm, 0, b"TJJOB001", n, 0, 0, *offsets)
            view = np.frombuffer(mm, np.uint8)
            for i in self.copy_in:
                start, src, size = spans[i]
                if size:
                    view[start:start + size] = np.ctypeslib.as_array(
                        (ctypes.c_uint8 * size).from_address(src))
            self._execute(job)
            bits, status = struct.unpack_from("<QQ", mm, 16)
            if status != 1:
                raise E.RunnerError(f"{self.target.name}: the harness did not finish the job")
            self.check_probe(bits)
            copy_outputs(buffers, self.n_inputs, self.n_inputs + self.n_outputs, view, offsets)
        finally:
            view = None
            if mm is not None:
                try:
                    mm.close()
                except BufferError:     # a view still held by a propagating exception's frame
                    pass
            os.close(fd)
            remove_files([job])

    def _execute(self, job: str) -> None:
        cmd = self.command(job)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as e:
            raise E.RunnerError(f"cannot start {cmd[0]} for {self.target.name}: {e}",
                                hint="torsh-jit runners --install") from None
        if r.returncode != 0:
            why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit status {r.returncode}"
            raise E.RunnerError(
                f"{self.target.name}: the kernel program stopped with {why} under {cmd[0]}"
                + (f":\n{r.stderr.strip()[-2000:]}" if r.stderr.strip() else ""),
                hint="a crash of generated code is a torsh-jit bug: please report it with "
                     f"`torsh-jit explain` output; the command was: {' '.join(cmd)}")
