"""wasmtime runner: WebAssembly code, run in this process.

build: the module's wasm32 object, linked by wasm-ld with wasi-libc into a self-contained
module: it exports `<module>_main`, `malloc`, `free` and its memory, and imports nothing
(wasi-libc's malloc, fmod and fma are pure code; nothing that talks to WASI is linked).
The linked module is what the cache stores (kind "wasm"); `aot.py` writes the same
bytes as the `.wasm` of a bundle.

run: buffers are allocated in linear memory by the module's own malloc (so the kernel's
own malloc, for matmul packing, never collides with them), inputs are copied in through a
numpy view of the memory (one memcpy each, no intermediate bytes), the 32-bit buffer
table is written, `<module>_main` runs, outputs are copied out the same way. WebAssembly
cannot address host memory, so those two copies are the least there can be.
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import subprocess
import threading
import weakref
from pathlib import Path

import numpy as np

from ... import errors as E
from ...cache import artifact_key, get_cache
from ...once import once
from . import byte_span, copy_outputs, remove_files, scratch_dir, tool_version

_counter = itertools.count()
_live: "weakref.WeakSet[WasmFunction]" = weakref.WeakSet()


@once
def _at_exit() -> None:
    import atexit
    atexit.register(_close_all)


def _close_all() -> None:
    """Free wasmtime objects at exit, while the wasmtime module can still do it (left to the
    garbage collector, they are freed after its ffi is gone and print tracebacks)."""
    for fn in list(_live):
        fn.close()
    if engine.built():
        engine().close()


@once
def engine():
    """The process's one wasmtime Engine: a module compiled by one Engine cannot be
    instantiated in a store of another."""
    import wasmtime
    return wasmtime.Engine()


@once
def _libc_id(sysroot: str) -> str:
    h = hashlib.sha256()
    for name in ("libc.a", "libm.a"):
        p = Path(sysroot) / name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def wasm_key(plan) -> str:
    t = plan.target
    return artifact_key(plan.key, linker=tool_version([t.linker, "--version"]),
                        libc=_libc_id(t.sysroot), exports=1)


def link(target, obj: bytes, exports: list[str], out_dir: str | None = None) -> bytes:
    """A self-contained .wasm module from a wasm32 object: wasm-ld with wasi-libc."""
    out_dir = out_dir or scratch_dir()
    stem = os.path.join(out_dir, f"link-{os.getpid()}-{threading.get_ident()}-{next(_counter)}")
    with open(stem + ".o", "wb") as f:
        f.write(obj)
    cmd = [target.linker, "--no-entry", "--gc-sections", "-z", f"stack-size={1 << 20}"]
    cmd += [f"--export={e}" for e in exports + ["malloc", "free"]]
    cmd += ["-o", stem + ".wasm", stem + ".o", f"-L{target.sysroot}", "-lc", "-lm"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise E.RunnerError(f"{target.linker} could not link the {target.name} module:\n"
                                f"{r.stderr.strip()}", hint=f"the command was: {' '.join(cmd)}")
        return Path(stem + ".wasm").read_bytes()
    finally:
        remove_files([stem + ".o", stem + ".wasm"])


def aot_artifacts(target, obj: bytes, symbol: str) -> dict[str, bytes]:
    """The bundle's `.wasm`: exports the entry, malloc, free and memory; imports nothing."""
    return {".wasm": link(target, obj, [symbol])}


def build(plan):
    from ..llvm.build import build_object, render
    wasm = get_cache().get_or_make(
        "wasm", wasm_key(plan),
        lambda: link(plan.target, build_object(render(plan), plan.target, jit=False),
                     [f"{plan.module_name}_main"]),
        {"target": plan.target.name, "kernels": len(plan.part.groups)}, expect=plan.expect)
    return WasmFunction(plan, wasm)


class WasmFunction:
    """A module instantiated in wasmtime; `.run` as CpuFunction's."""

    def __init__(self, plan, wasm: bytes):
        import wasmtime
        self.plan = plan
        self.target = plan.target
        self.module = wasmtime.Module(engine(), wasm)
        self.store = wasmtime.Store(engine())
        self.instance = wasmtime.Instance(self.store, self.module, [])
        ex = self.instance.exports(self.store)
        self.main = ex[f"{plan.module_name}_main"]
        self.malloc, self.free, self.memory = ex["malloc"], ex["free"], ex["memory"]
        b = plan.part.buffers
        self.n_inputs = b.n_inputs
        self.n_outputs = len(b.outputs)
        # the buffers copied in: the inputs, and a symbolic plan's size table (the last)
        self.copy_in = tuple(range(b.n_inputs)) + ((plan.n_buffers - 1,) if plan.symbols else ())
        self._lock = threading.Lock()
        _at_exit()
        _live.add(self)

    def bind(self, values: dict):
        """At a symbolic plan's sizes: the same program (the kernels read the size table)."""
        return self

    def close(self) -> None:
        with self._lock:
            self.store.close()
            self.module.close()

    def _mem(self) -> np.ndarray:
        """The linear memory as a uint8 array (valid until the memory grows)."""
        n = self.memory.data_len(self.store)
        return np.ctypeslib.as_array(self.memory.data_ptr(self.store), shape=(n,))

    def _alloc(self, size: int) -> int:
        p = self.malloc(self.store, size)
        if p == 0:
            raise E.RunnerError(f"{self.target.name}: {size} bytes do not fit in WebAssembly's 4 GiB "
                                "linear memory", hint="use smaller arrays, or a 64-bit target")
        return p

    def run(self, buffers: tuple) -> None:
        """buffers: every input (arrays, 0-d arrays for scalars), output and temporary, in order."""
        import wasmtime
        n = len(buffers)
        with self._lock:
            blocks = []
            try:
                table = self._alloc(4 * max(n, 1))
                blocks.append(table)
                ptrs, spans = [], []
                for a in buffers:
                    lo, size = byte_span(a)
                    addr = a.__array_interface__["data"][0]
                    p = self._alloc(size + 128)
                    blocks.append(p)
                    start = (p + 63) // 64 * 64 + (addr + lo) % 64   # the array's alignment class
                    ptrs.append(start - lo)
                    spans.append((start, addr + lo, size))
                mem = self._mem()
                for i in self.copy_in:
                    start, src, size = spans[i]
                    if size:
                        mem[start:start + size] = np.ctypeslib.as_array(
                            (ctypes.c_uint8 * size).from_address(src))
                mem[table:table + 4 * n] = np.asarray(ptrs, dtype="<u4").view(np.uint8)
                try:
                    self.main(self.store, table)
                except wasmtime.Trap as e:
                    raise E.RunnerError(f"{self.target.name}: the kernel trapped in wasmtime: {e}",
                                        hint="a trap in generated code is a torsh-jit bug: please "
                                             "report it with `torsh-jit explain` output") from None
                mem = self._mem()            # the kernel's malloc may have grown the memory
                copy_outputs(buffers, self.n_inputs, self.n_inputs + self.n_outputs, mem, ptrs)
            finally:
                for p in reversed(blocks):
                    self.free(self.store, p)
