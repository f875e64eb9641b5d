"""Build and launch for the LLVM CPU targets.

build: LLVM IR text -> llvmlite (parse, verify, O3 for the target's CPU and
features) -> object code. The object is what the cache stores; launching loads
it into this process's MCJIT engine, so a cached kernel costs no LLVM code
generation in a new process.
launch: arrays -> buffer table -> kernels, each over [start, end) work ranges,
split across a persistent thread pool when the work is large.
"""
from __future__ import annotations

import ctypes
import sys
import threading

import llvmlite.binding as llvm

from ... import errors as E
from ...once import once

STATS = {"codegen": 0, "object_loads": 0}   # LLVM code generations / objects loaded this process
_lock = threading.Lock()


@once
def init_native() -> None:
    """LLVM's target for this CPU: all that loading an object and building for this CPU need."""
    for fn in ("initialize", ):
        # llvmlite >= 0.44 initialises the core itself; older releases need the call
        try:
            getattr(llvm, fn)()
        except Exception:
            pass
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@once
def init_llvm() -> None:
    """Every target LLVM has (cross builds: AArch64, RISC-V, wasm32 on an x86-64 host):
    1.1-1.2 ms, a fifth of a warm start's budget, so only a build for another architecture
    pays it (_new_target_machine)."""
    init_native()
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


def llvm_version() -> str:
    return ".".join(map(str, llvm.llvm_version_info))


def _new_target_machine(triple: str, cpu: str, features: str, *, jit: bool):
    init_native()
    try:
        t = llvm.Target.from_triple(triple)
    except RuntimeError:                  # another architecture's: not registered yet
        init_llvm()
        t = llvm.Target.from_triple(triple)
    return t.create_target_machine(cpu=cpu, features=features, opt=3,
                                   reloc="pic" if not jit else "default",
                                   codemodel="jitdefault" if jit else "small")


@once
def target_machine(triple: str, cpu: str, features: str, *, jit: bool = True):
    """The target machine every build for these settings shares."""
    return _new_target_machine(triple, cpu, features, jit=jit)


def optimize(mod, tm) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = False      # our templates are already vector code
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


def parse(ir_text: str, target):
    init_native()
    try:
        mod = llvm.parse_assembly(ir_text)
        mod.verify()
    except RuntimeError as e:
        raise E.InternalError(f"generated LLVM IR does not verify: {e}") from None
    mod.triple = target.triple
    return mod


def build_object(ir_text: str, target, *, jit: bool = True) -> bytes:
    """Object code for the target (one code generation, counted in STATS)."""
    tm = target_machine(target.triple, target.cpu, target.feature_string, jit=jit)
    mod = parse(ir_text, target)
    mod.data_layout = str(tm.target_data)
    optimize(mod, tm)
    with _lock:
        STATS["codegen"] += 1
    return tm.emit_object(mod)


def assembly(ir_text: str, target) -> str:
    tm = target_machine(target.triple, target.cpu, target.feature_string, jit=False)
    mod = parse(ir_text, target)
    mod.data_layout = str(tm.target_data)
    optimize(mod, tm)
    return tm.emit_assembly(mod)


class _Engine:
    """The process's MCJIT engine; objects are added to it and never removed."""

    def __init__(self):
        # a machine of its own: the engine takes ownership of it and frees it with itself,
        # so a shared one from target_machine() would dangle if an engine were ever dropped
        tm = _new_target_machine(llvm.get_process_triple(), "", "", jit=True)
        # MCJIT is made with a module, and its first finalize_object compiles that module:
        # LLVM's code generation pipeline for nothing, 1.4 ms of every process's first kernel
        # (of a warm start's 7). Taken back at once, it is never compiled; the engine only
        # loads objects. (Kept alive beside the engine, though nothing refers to it.)
        self._empty = llvm.parse_assembly("")
        self.ee = llvm.create_mcjit_compiler(self._empty, tm)
        self.ee.remove_module(self._empty)

    def load(self, obj: bytes, names: list[str]) -> dict[str, int]:
        with _lock:
            self.ee.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.ee.finalize_object()
            STATS["object_loads"] += 1
            out = {}
            for n in names:
                addr = self.ee.get_function_address(n)
                if not addr:
                    raise E.InternalError(f"symbol {n} not found in the loaded object")
                out[n] = addr
            return out


@once
def engine() -> _Engine:
    return _Engine()


# -- the runtime module: pointer reader and worker pool ------------------------------------
@once
def runtime() -> dict[str, int]:
    """Addresses of the native runtime's functions (templates/llvm/runtime.ll.j2), built
    once and kept in the disk cache like a kernel, so a warm process does no codegen."""
    from ...cache import get_cache, identity, runtime_key
    from ...target import Target, data_dir
    init_native()
    triple = llvm.get_process_triple()
    arch = triple.split("-")[0]
    # the spin-wait hint: x86 PAUSE, ARM YIELD (intrinsics: no inline assembler needed)
    pause = {"x86_64": "call void @llvm.x86.sse2.pause()",
             "aarch64": "call void @llvm.aarch64.hint(i32 1)"}.get(arch, "")
    text = (data_dir("templates") / "llvm" / "runtime.ll.j2").read_text()
    what = {"runtime": text, "triple": triple, "pause": pause}
    key = runtime_key(what, llvm_version())
    expect = {"plan": "runtime:" + identity(what)}
    cache = get_cache()
    obj = cache.get("obj", key, expect=expect)
    if obj is None:
        from ...codegen.jinja_env import template
        src = template("llvm/runtime.ll.j2").render(triple=triple, pause=pause, spin=2000)
        obj = build_object(src, Target("runtime", "llvm", triple, "", ()))
        with _lock:
            STATS["codegen"] -= 1      # runtime support, not a kernel
        cache.put("obj", key, obj, {"what": "torsh-jit native runtime", **expect})
    return engine().load(obj, ["tj_fill_pointers", "tj_pool_start", "tj_pool_launch"])


# ctypes' own ways to get a data pointer (a.ctypes.data, __array_interface__) cost
# ~0.5 us per array; tj_fill_pointers (templates/llvm/runtime.ll.j2) and each module's Python
# entry (module.ll.j2's _py) read PyArrayObject->data from the argument tuple instead, at
# these byte offsets: a tuple's items from 24, an array's data pointer at 16.
_TUPLE_ITEMS, _ARRAY_DATA = 24, 16


@once
def layout_holds() -> bool:
    """The object layouts the native pointer readers assume hold in this interpreter (not a
    debug or free-threaded CPython, and reading the offsets gives a.ctypes.data). Checked
    from Python, not with tj_fill_pointers: a process that runs only small kernels (through
    their Python entry) then never loads the runtime's object, 0.6-0.9 ms of a warm start."""
    import numpy as np
    if hasattr(sys, "gettotalrefcount") or getattr(sys, "_is_gil_enabled", lambda: True)() is False:
        return False
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return False
    args = (np.arange(3.0), np.zeros((2, 2), np.float32)[:, 1])
    for i, a in enumerate(args):
        item = ctypes.c_void_p.from_address(id(args) + _TUPLE_ITEMS + 8 * i).value
        if item != id(a) or ctypes.c_void_p.from_address(id(a) + _ARRAY_DATA).value != a.ctypes.data:
            return False
    return True


@once
def pointer_reader():
    """The native pointer reader, or None where the object layouts it assumes do not hold
    (layout_holds, and the reader's own result checked against a.ctypes.data)."""
    import numpy as np
    if not layout_holds():
        return None
    fn = ctypes.PYFUNCTYPE(None, ctypes.py_object, ctypes.c_void_p, ctypes.c_int64)(
        runtime()["tj_fill_pointers"])
    a, b = np.arange(3.0), np.zeros((2, 2), np.float32)[:, 1]
    table = (ctypes.c_void_p * 2)()
    fn((a, b), ctypes.addressof(table), 2)
    if table[0] != a.ctypes.data or table[1] != b.ctypes.data:
        return None
    return fn


def render(p) -> str:
    """The LLVM module of a plan: every kernel, the serial entry and the Python trampoline
    (a symbolic plan's was rendered while planning, where its guards were recorded)."""
    if p.source is not None:
        return p.source
    from ...codegen.llvm import render_module
    return render_module(list(zip(p.kernel_names(), p.part.groups, p.configs)), p.target,
                         p.module_name, p.n_buffers, plan_text=p.describe(),
                         symbols=p.symbols)
