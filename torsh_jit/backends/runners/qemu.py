"""qemu-user runner: AArch64 and RISC-V code, run on any Linux machine.

build: the module's object code for the target triple, linked with harness.c by the
target's cross gcc (`cc` in the target file) into one static executable. The executable
is what the cache stores (kind "exe", keyed by the plan's key, the harness and the
compiler version), so a second process neither generates code nor links.

run: the buffers go into a job file in /dev/shm that the harness maps shared (jobfile.py),
`qemu-ARCH -cpu ... prog JOBFILE` runs the module's serial entry, outputs are copied back
into the numpy arrays. The emulated vector
length comes from the environment variable the target names (`vlen_env`), read on every
call, and the harness reads it back from the emulated CPU so a wrong setting fails loudly.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
from pathlib import Path

from ... import errors as E
from ...cache import artifact_key, get_cache
from ...once import once
from . import remove_files, scratch_dir, tool_version
from .jobfile import JobFunction

HARNESS = Path(__file__).with_name("harness.c")
_CFLAGS = ["-O2", "-static", "-s"]     # static: no loader or sysroot at run time; -s: half the size
_counter = itertools.count()


@once
def _harness_hash() -> str:
    return hashlib.sha256(HARNESS.read_bytes()).hexdigest()


@once
def _cc_version(cc: str) -> str:
    return tool_version([cc, "--version"])


def exe_key(plan) -> str:
    t = plan.target
    return artifact_key(plan.key, harness=_harness_hash(), cc=_cc_version(t.cc), flags=_CFLAGS,
                        probe=t.vlen_probe)


def link(plan, obj: bytes, out_dir: str) -> bytes:
    """The static executable of harness.c + the module object, by the target's cross gcc."""
    t = plan.target
    stem = os.path.join(out_dir, f"{plan.module_name}-{os.getpid()}-{next(_counter)}")
    with open(stem + ".o", "wb") as f:
        f.write(obj)
    cmd = [t.cc, *_CFLAGS, f"-DTJ_ENTRY={plan.module_name}_main"]
    if t.vlen_probe:
        cmd.append(f"-DTJ_PROBE_{t.vlen_probe.upper()}")
    cmd += ["-o", stem + ".exe", str(HARNESS), stem + ".o", "-lm"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise E.RunnerError(f"{t.cc} could not link the {t.name} harness:\n{r.stderr.strip()}",
                                hint=f"check that {t.cc} can build static programs "
                                     f"(its libc6-dev cross package); the command was: {' '.join(cmd)}")
        return Path(stem + ".exe").read_bytes()
    finally:
        remove_files([stem + ".o", stem + ".exe"])


def build(plan):
    from ..llvm.build import build_object, render
    key = exe_key(plan)
    exe = get_cache().get_or_make(
        "exe", key, lambda: link(plan, build_object(render(plan), plan.target, jit=False), scratch_dir()),
        {"target": plan.target.name, "kernels": len(plan.part.groups)}, expect=plan.expect)
    return QemuFunction(plan, exe, key)


def describe_lengths(lengths) -> str:
    """The accepted vector lengths as a reader takes them in: a range when they are every
    multiple of the smallest up to the largest, else the list (noting powers of 2)."""
    v = sorted(set(int(n) for n in lengths))
    if len(v) > 2 and v == list(range(v[0], v[-1] + 1, v[0])):
        return f"{v[0]}..{v[-1]} in multiples of {v[0]}"
    text = ", ".join(map(str, v[:-1])) + (" or " if len(v) > 1 else "") + str(v[-1])
    if len(v) > 2 and all(b == 2 * a for a, b in zip(v, v[1:])):
        text += f" (powers of 2 from {v[0]} to {v[-1]})"
    return text


def _bad_length(target, what: str) -> E.RunnerError:
    return E.RunnerError(
        f"{what}: not a vector length torsh-jit runs {target.name} at under {target.runner}",
        hint=f"{target.vlen_env} is the emulated vector length in bits: "
             f"{describe_lengths(target.vlens)}; unset, it is {target.vlens[0]}")


def emulator_command(target, vlen: int | None = None) -> list[str]:
    """`qemu-ARCH -cpu ... -L SYSROOT`, to which a program and its arguments are appended;
    vlen: the emulated vector length (default: the target's first; RunnerError for one
    that is not in its list, rather than a qemu that refuses its -cpu options)."""
    cmd = [target.runner]
    if target.emulator_cpu:
        vlen = vlen or (target.vlens[0] if target.vlens else 0)
        if target.vlens and vlen not in target.vlens:
            raise _bad_length(target, f"{vlen}-bit vectors")
        cmd += ["-cpu", target.emulator_cpu.format(vlen=vlen, vlen_bytes=vlen // 8)]
    if target.sysroot and os.path.isdir(target.sysroot):
        cmd += ["-L", target.sysroot]
    return cmd


class QemuFunction(JobFunction):
    """A module built for another ISA, run under qemu-user; `.run` as CpuFunction's."""

    def __init__(self, plan, exe: bytes, key: str):
        super().__init__(plan, exe, key)
        self.last_vector_bits = 0      # what the emulated CPU reported on the last run

    def vector_length(self) -> int:
        """The emulated vector length for the next run, from the target's environment variable."""
        t = self.target
        if not t.vlen_env:
            return 0
        text = os.environ.get(t.vlen_env, "").strip()
        if not text:
            return t.vlens[0]
        v = int(text) if text.isascii() and text.isdigit() else -1   # int() takes "1_024", "+128"
        if v not in t.vlens:
            raise _bad_length(t, f"{t.vlen_env}={text!r}")
        return v

    def command(self, job: str) -> list[str]:
        return emulator_command(self.target, self.vector_length()) + [self.exe, job]

    def check_probe(self, bits: int) -> None:
        self.last_vector_bits = bits
        t = self.target
        if t.vlen_probe:
            want = self.vector_length()
            if bits != want:
                raise E.RunnerError(f"{t.name}: asked {t.runner} for {want}-bit vectors, the emulated "
                                    f"CPU has {bits}", hint=f"check that {t.runner} supports -cpu "
                                                            f"{emulator_command(t, want)[2]}")
