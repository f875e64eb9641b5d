"""Ahead-of-time compilation: a bundle of object code, C header and manifest per target.

    torsh-jit compile model.py:gelu --arg f32[4096] --arg f32[4096] --target host -o out/

writes out/<target>/<name>.{ll,o,h} and out/manifest.json. The header declares
one C function taking a pointer per argument and per output; it calls the
object's `<module>_main(void **buffers)` entry and allocates temporaries itself
(aot/header.py). A dimension written as a name (`--arg f32[n,1024]`, aot/specs.py) is a
symbolic size: the function takes it as an `int64_t` parameter and one object serves every
value the plan's guards allow; the header checks them per call (aot/sizes.py).
Objects are for the target's triple (any target, whatever this machine is: link an
aarch64 object with aarch64-linux-gnu-gcc, ...). For wasm32 the bundle also holds
`<name>.wasm`, the object linked with wasi-libc into a module that exports the entry,
`malloc`, `free` and its memory and imports nothing (wasm-ld and wasi-libc are needed
for it: without them the compile fails and says what to install). A bundle is written whole
or not at all (built beside the output directory, then moved into place).
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import errors as E
from ..backends import backend_for
from ..compiler import plan, render
from ..ir.symbols import ShapeEnv
from ..ir.tracer import ArgSpec, spec_symbols, trace
from ..runtime.aliases import resolve as parse_target
from . import sizes
from .header import header
from .specs import parse_arg, parse_args

__all__ = ["compile_bundle", "parse_arg", "parse_args"]

def _extra_files(t, obj: bytes, symbol: str) -> dict[str, bytes]:
    """Files a bundle carries for the target beside its object (wasm32: `{".wasm": module}`,
    linked by wasm-ld). Making them needs the runner's commands and files, not its Python
    engine (wasmtime only runs the module): one of those missing is an error that says what
    to install, never a bundle quietly without the file."""
    import importlib
    from ..backends import runners
    mod = runners.KINDS.get(runners.kind(t))
    make = getattr(importlib.import_module(f"{runners.__name__}.{mod}"), "aot_artifacts", None) \
        if mod else None
    if make is None:
        return {}
    miss = [n for n in runners.missing(t) if "python" not in n]
    if miss:
        what = ", ".join(str(n.get("command") or n.get("file")) for n in miss)
        raise E.RunnerError(f"the {t.name} bundle's extra files (its linked module) need {what}, "
                            "which this machine lacks", hint="install: " + runners.install_hint(miss))
    return make(t, obj, symbol)


def _make_parents(path: Path) -> list[Path]:
    """mkdir -p path's parent; the directories it created, innermost first."""
    made = []
    p = path.parent
    while not p.exists():
        made.append(p)
        p = p.parent
    for d in reversed(made):
        d.mkdir(exist_ok=True)
    return made


def _move_into_place(tmp: Path, out: Path) -> None:
    """The finished bundle in tmp becomes out: one rename when out does not exist; else each
    target directory replaces its namesake (the old one moved aside into tmp, deleted with
    it), and manifest.json last, so a reader that finds the new manifest finds its files."""
    import os
    if not out.exists():
        os.replace(tmp, out)
        return
    if not out.is_dir():
        raise E.ArgumentError(f"the output {out} exists and is not a directory",
                              hint="name a directory (-o DIR), new or holding earlier bundles")
    old = tmp / ".replaced"
    old.mkdir()
    for entry in sorted(tmp.iterdir(), key=lambda e: e.name == "manifest.json"):
        if entry == old:
            continue
        dest = out / entry.name
        if dest.is_dir() and entry.is_dir():
            os.replace(dest, old / entry.name)
        os.replace(entry, dest)


def compile_bundle(fn, specs: tuple[ArgSpec, ...], targets: list[str], out_dir, *,
                   name: str | None = None, progress=print) -> dict:
    """Compile fn for each target into out_dir; returns the manifest (also written).

    The bundle is written whole or not at all: it is built in a temporary directory beside
    out_dir and moved into place once every target has built; a target that fails leaves
    out_dir as it was (and no directory where there was none)."""
    import inspect
    import os
    import secrets
    import shutil
    name = name or fn.__name__
    out = Path(out_dir).absolute()
    ts = []
    for tname in targets:          # every name checked before anything is compiled
        t = parse_target(tname)
        if not backend_for(t).aot:
            raise E.TargetError(f"ahead-of-time bundles for {t.name} ({t.language}) are not built yet",
                                hint="use LLVM CPU targets, e.g. --target host,aarch64-neon,wasm32-simd128")
        if spec_symbols(specs) and not backend_for(t).symbolic_sizes:
            raise E.TargetError(f"bundles for {t.name} take exact shapes only (its code reads no "
                                "sizes at run time yet)", hint="give integer dimensions in --arg")
        ts.append(t)
    try:
        names = list(inspect.signature(fn).parameters)[:len(specs)]
    except (TypeError, ValueError):
        names = [f"arg{i}" for i in range(len(specs))]
    # exact shapes trace once; symbolic ones per target, in that target's ShapeEnv (_plan)
    graph = None if spec_symbols(specs) else trace(fn, specs)[0]
    made = _make_parents(out)
    # mkdir, not mkdtemp: the bundle keeps the umask's permissions, not mkdtemp's 0700
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    done = False
    try:
        manifest = _build(fn, graph, specs, names, ts, tmp, name, progress)
        _move_into_place(tmp, out)
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            for d in made:           # innermost first; only directories this call created
                try:
                    d.rmdir()
                except OSError:
                    break
    return manifest


def _plan(fn, graph, specs, names, t):
    """The plan for one target. Symbolic sizes trace and plan in a ShapeEnv of their own (each
    target's code asks its own questions of the sizes), and every guard must leave the sizes
    free (sizes.check_guards)."""
    if graph is not None:
        return plan(graph, specs, t)
    try:
        with ShapeEnv().active():
            g, _ = trace(fn, specs)
            p = plan(g, specs, t)
    except E.InternalError as err:
        raise E.CompileError(f"{fn.__name__} does not compile with symbolic sizes for {t.name} yet "
                             f"({err})", hint="give integer dimensions in --arg (exact sizes)") from None
    sizes.check_guards(p.guards, specs, names, t.name)
    return p


def _build(fn, graph, specs, names, targets, out: Path, name: str, progress) -> dict:
    """Write every target's files and the manifest into out (the temporary directory)."""
    from ..backends.llvm.build import build_object
    manifest = {"name": name, "format": 1, "entries": []}
    for t in targets:
        progress(f"compiling {name} for {t.name} ...")
        p = _plan(fn, graph, specs, names, t)
        src = render(p)
        obj = build_object(src, t, jit=False)
        d = out / t.name
        d.mkdir(exist_ok=True)
        (d / f"{name}.ll").write_text(src)
        (d / f"{name}.o").write_bytes(obj)
        b = p.part.buffers
        (d / f"{name}.h").write_text(header(name, p.module_name, specs, names, b.outputs, b.temps,
                                            p.symbols, p.guards))
        files = {"llvm_ir": f"{t.name}/{name}.ll", "object": f"{t.name}/{name}.o",
                 "header": f"{t.name}/{name}.h"}
        for suffix, data in _extra_files(t, obj, f"{p.module_name}_main").items():
            (d / f"{name}{suffix}").write_bytes(data)
            files[suffix.lstrip(".")] = f"{t.name}/{name}{suffix}"
        entry = {
            "target": t.name, "triple": t.triple, "cpu": t.cpu, "features": list(t.features),
            "symbol": f"{p.module_name}_main", "c_function": name, "pointer_bits": t.pointer_bits,
            "files": files,
            # a symbolic size is its name (an argument's) or an expression of the names
            "arguments": [{"name": n, "kind": s.kind, "dtype": s.dtype, "shape": _shape(s.shape)}
                          for n, s in zip(names, specs)],
            "outputs": [{"dtype": dt, "shape": _shape(sh)} for sh, dt in b.outputs],
            # the entry's buffer table is arguments, outputs, then these scratch buffers
            "temporaries": [{"dtype": dt, "shape": _shape(sh)} for sh, dt in b.temps],
            "kernels": len(p.part.groups), "buffers": p.n_buffers,
        }
        if p.symbols:
            entry.update(sizes.manifest_fields(specs, names, p.symbols, p.guards, p.n_buffers - 1))
        manifest["entries"].append(entry)
        extra = "".join(f", {Path(f).suffix}" for k, f in files.items() if k not in ("llvm_ir", "object", "header"))
        progress(f"  built {t.name}/{name}.o, .h, .ll{extra} ({len(p.part.groups)} kernel(s))")
        if p.symbols:
            cond = " and ".join(map(repr, p.guards))
            progress(f"  sizes {', '.join(p.symbols)} are parameters of {name}()"
                     + (f"; it returns -3 unless {cond}" if cond else ": every size >= 0 works"))
    from .. import __version__
    manifest["torsh_jit_version"] = __version__
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _shape(shape) -> list:
    return [sizes.describe(d) for d in shape]
