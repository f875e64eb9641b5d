"""Templates compiled ahead of time into Python modules, shipped inside the wheel.

Jinja compiles a template to Python source, then to bytecode, the first time a process asks
for it; jinja_env.py keeps the bytecode in the cache directory, so a machine pays it once.
Once is still most of the first kernel a new machine compiles: the chain exp/sin/tanh
needs nine templates, 143 ms to compile (the float32 sin's Payne-Hanek macros alone 80 ms;
2-core VM), against about 110 ms for everything else of that call. So the wheel carries
them compiled: while it is built (setup.py's build_py), `write` turns every template into
the module Jinja's own ModuleLoader would import (Environment.compile(raw=True,
defer_init=True)), and pip byte-compiles those modules when it installs the wheel, like any
Python file: a template then costs an unmarshal.

A shipped module is used only for exactly what it was compiled from (jinja_env._Loader):
the same Jinja version, the same environment options, the same template name in the same
environment directory, and a template whose bytes hash to the sha256 recorded for it; any
other case (an edited or new template, another Jinja) compiles as before, through the disk
cache. Nothing is shipped in a source checkout or an editable install.

This file imports nothing of torsh_jit: setup.py loads it by its path while the wheel is
built, when the package's own dependencies may not be importable.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import jinja2

# the options every environment gets (jinja_env.py makes them with these); part of the
# compiled-template cache's directory name and of the shipped index, since the code Jinja
# generates depends on them and its own key does not
OPTIONS = dict(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
               keep_trailing_newline=True, autoescape=False)

# The directories, relative to templates/, that renderers make environments for: templates
# are compiled under the name they have in the nearest one (vmath's functions are loaded as
# "exp.ll.j2" from templates/llvm/vmath). An environment elsewhere finds nothing shipped for
# its names and compiles them.
ROOTS = ("", "llvm/vmath")

PACKAGE = "_templates_py"          # torsh_jit/_templates_py/ inside the wheel
INDEX = "__init__.py"
FORMAT = 1


def options_tag() -> str:
    return hashlib.sha256(repr(sorted((k, getattr(v, "__name__", v)) for k, v in OPTIONS.items()))
                          .encode()).hexdigest()[:8]


def module_name(root: str, name: str) -> str:
    """The file name of the module of template `name` in the environment at `root`."""
    return "t_" + hashlib.sha256(f"{root}\0{name}".encode()).hexdigest()[:24] + ".py"


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _templates(templates: Path) -> list[tuple[str, str]]:
    """(root, name) of every template, each under its nearest root."""
    out = []
    for path in sorted(templates.rglob("*.j2")):
        rel = path.relative_to(templates).as_posix()
        root = max((r for r in ROOTS if r == "" or rel.startswith(r + "/")), key=len)
        out.append((root, rel[len(root) + 1:] if root else rel))
    return out


def write(templates: str | os.PathLike, out: str | os.PathLike) -> int:
    """Compile every template under `templates` into modules in `out` (made, or emptied of
    earlier modules), with the index jinja_env reads; returns how many."""
    templates, out = Path(templates), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("t_*.py"):
        old.unlink()
    entries = {}
    for root, name in _templates(templates):
        directory = templates / root if root else templates
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(directory)), **OPTIONS)
        source, filename, _ = env.loader.get_source(env, name)
        code = env.compile(source, name, filename, raw=True, defer_init=True)
        module = module_name(root, name)
        (out / module).write_text(
            f"# torsh-jit: {root + '/' if root else ''}{name}, compiled by Jinja "
            f"{jinja2.__version__} (torsh_jit/codegen/jinja_shipped.py); do not edit\n" + code,
            encoding="utf-8")
        entries[f"{root}\0{name}"] = (module, source_hash(source))
    lines = ['"""Templates compiled by torsh_jit/codegen/jinja_shipped.py while the wheel was '
             'built."""', f"FORMAT = {FORMAT}", f"JINJA = {jinja2.__version__!r}",
             f"OPTIONS = {options_tag()!r}", "TEMPLATES = {"]
    lines += [f"    {k!r}: {v!r}," for k, v in sorted(entries.items())]
    lines += ["}", ""]
    (out / INDEX).write_text("\n".join(lines), encoding="utf-8")
    return len(entries)
