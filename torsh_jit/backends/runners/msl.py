"""The MSL harness: a plan's Metal Shading Language, compiled as C++ and run on Linux.

build: the generated .metal file (unchanged: its `#include <metal_stdlib>` finds the shim
in msl_shim/) followed by one thunk per kernel and the module's entry, compiled by clang++
as C++17 with msl_threads.cpp and harness.c into one executable, cached by the plan's key,
the shim, the harness sources and the compiler's version. The shim maps exactly what the
templates use, so MSL the shim lacks fails to compile (CompileError with clang's message).

run: as qemu's (jobfile.py): the buffers in a job file, one process per call. Each kernel
is dispatched as `groups` threadgroups of `threads` OS threads (msl_threads.cpp): one
threadgroup at a time, its threads meeting at real barriers. The skeletons stride over
their work, so a dispatch of fewer threadgroups than Metal would use (at most MAX_GROUPS
here, for time) is a correct execution of the same kernels. A symbolic plan's dispatch
counts are read at run time from its size table, after the symbols' values: the bound
function (MslHarnessFunction.bind) appends them from plan.units at each call's sizes.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ... import errors as E
from ...cache import artifact_key, get_cache
from ...once import once
from . import remove_files, scratch_dir, tool_version
from .jobfile import JobFunction

HERE = Path(__file__).parent
SHIM_DIR = HERE / "msl_shim"
SOURCES = (SHIM_DIR / "metal_stdlib", HERE / "msl_threads.cpp", HERE / "harness.c")
CXX, CC = "clang++", "clang"
CXXFLAGS = ["-O2", "-std=c++17", "-pthread", "-Werror=unknown-attributes"]
MAX_GROUPS = 4          # threadgroups per dispatch here (grid-stride skeletons: any count is correct)
_counter = itertools.count()


@once
def _sources_hash() -> str:
    h = hashlib.sha256()
    for f in SOURCES:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@once
def compiler_version() -> str:
    return tool_version([CXX, "--version"]) if shutil.which(CXX) else ""


def dispatch(launch) -> tuple[int, int]:
    """(threadgroups, threads per threadgroup) of a kernel's dispatch in the harness."""
    from ...codegen.msl import groups_needed
    return min(MAX_GROUPS, max(1, groups_needed(launch))), launch.threads


def thunks(launches, entry: str, sizes: tuple[int, int] | None = None) -> str:
    """C++ (over the shim's names only) after the .metal text: for each kernel, a function
    of (buffers, thread position) that calls it, and the module's entry dispatching them.
    sizes: a symbolic plan's (size table slot, symbols): kernel i's threadgroups are the
    table's entry symbols + i."""
    from ...codegen.msl import LANG
    out = ["", "// ---- torsh-jit MSL harness: thunks and the module's entry (not MSL) ----"]
    calls = []
    for i, l in enumerate(launches):
        args = []
        for b, kind, dtype in l.params:
            mt = LANG.mem_types[dtype]
            args.append(f"*(constant {mt}*)b[{b}]" if kind == "scalar" else f"(device {mt}*)b[{b}]")
        args += ["tid", "gid", "ngroups"]
        out.append(f"static void tj_thread_{i}(void* const* b, uint tid, uint gid, uint ngroups) {{\n"
                   f"  {l.name}({', '.join(args)});\n}}")
        if sizes is None:
            groups, threads = dispatch(l)
            groups = f"{groups}u"
        else:
            groups, threads = f"(uint)((const long*)b[{sizes[0]}])[{sizes[1] + i}]", l.threads
        calls.append(f"  tj_msl_run(tj_thread_{i}, b, {groups}, {threads}u);")
    out.append(f'extern "C" void {entry}(void** b) {{\n' + "\n".join(calls) + "\n}\n")
    return "\n".join(out)


def exe_key(plan) -> str:
    return artifact_key(plan.key, sources=_sources_hash(), cxx=compiler_version(), flags=CXXFLAGS,
                        groups=MAX_GROUPS)


def compile_exe(source: str, entry: str, what: str, out_dir: str) -> bytes:
    """The executable of the .metal text (+ thunks and `entry`, the job's function),
    msl_threads.cpp and harness.c. what: the target, for messages."""
    stem = os.path.join(out_dir, f"{entry}-{os.getpid()}-{next(_counter)}")
    files = [stem + ".metal", stem + ".o", stem + ".exe"]
    with open(files[0], "w") as f:
        f.write(source)
    steps = [
        ([CC, "-O2", f"-DTJ_ENTRY={entry}", "-c", "-o", files[1],
          str(HERE / "harness.c")], "the job-file harness"),
        ([CXX, *CXXFLAGS, "-I", str(SHIM_DIR), "-o", files[2], "-x", "c++", files[0],
          str(HERE / "msl_threads.cpp"), "-x", "none", files[1]], "the generated MSL"),
    ]
    try:
        for cmd, step in steps:
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            except OSError as e:
                raise E.RunnerError(f"cannot run {cmd[0]} for the {what} harness: {e}",
                                    hint="torsh-jit runners --install (Debian package clang)") from None
            if r.returncode != 0:
                raise E.CompileError(
                    f"{cmd[0]} could not compile {step} for {what} (MSL as C++ against "
                    f"torsh-jit's MSL shim):\n{r.stderr.strip()[-4000:]}",
                    hint=f"the shim ({SHIM_DIR / 'metal_stdlib'}) maps exactly what templates/msl "
                         "uses: a name it lacks is not MSL, or is MSL the shim must learn first "
                         "(as Metal defines it); `torsh-jit explain --target metal` shows the source")
        return Path(files[2]).read_bytes()
    finally:
        remove_files(files)


def build(plan):
    from ...codegen.cstyle.launch import plan_launches
    from ...codegen.msl import render_plan
    key = exe_key(plan)
    sizes = (plan.n_buffers - 1, len(plan.symbols)) if plan.symbols else None

    def make():
        src, launches = plan_launches(plan, render_plan)
        return compile_exe(src + thunks(launches, f"{plan.module_name}_main", sizes),
                           f"{plan.module_name}_main", plan.target.name, scratch_dir())
    exe = get_cache().get_or_make("exe", key, make, {"target": plan.target.name,
                                                    "kernels": len(plan.part.groups)},
                                  expect=plan.expect)
    return MslHarnessFunction(plan, exe, key)


class MslHarnessFunction(JobFunction):
    """A plan's MSL kernels built as a native program; `.run` as CpuFunction's."""

    def bind(self, values: dict):
        """At a symbolic plan's sizes: the size table the call appends gets each kernel's
        threadgroups after the symbols (plan.units evaluated; at most MAX_GROUPS)."""
        return _Dispatched(self, values)


class _Dispatched:
    """A symbolic MslHarnessFunction at one call's sizes."""

    def __init__(self, fn: MslHarnessFunction, values: dict):
        from ...codegen.msl import grid_groups
        from ...ir.symbols import evaluate
        p = fn.plan
        counts = [min(MAX_GROUPS, max(1, grid_groups([evaluate(x, values) for x in g])))
                  for u in p.units for g in u]
        self.table = np.array([values[n] for n in p.symbols] + counts, np.int64)
        self.fn = fn

    def run(self, buffers: tuple) -> None:
        self.fn.run(buffers[:-1] + (self.table,))
