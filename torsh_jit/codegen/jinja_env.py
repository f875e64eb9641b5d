"""The Jinja environment every renderer uses, with compiled templates kept on disk.

Jinja turns a template into Python source and compiles it the first time a process asks for
it: 5-10 ms a template, and a CUDA module needs three, which was a fifth of a kernel's
first-call time. Like Python's __pycache__, the compiled form is kept in the cache directory
(TORSH_JIT_CACHE_DIR or the platform's user cache), under templates-<jinja version>-<tag>/,
keyed by Jinja on the template's name and checked against a hash of its source, so an edited
template is recompiled. It is independent of TORSH_JIT_CACHE=0 (which is about kernels):
TORSH_JIT_TEMPLATE_CACHE=0 turns it off. An unwritable directory or an unreadable file costs
only the compile.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import jinja2

from ..once import once

# the options every environment gets; part of the directory name, since the code Jinja
# generates depends on them and its own key does not
OPTIONS = dict(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
               keep_trailing_newline=True, autoescape=False)


class _Bytecode(jinja2.FileSystemBytecodeCache):
    def load_bytecode(self, bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:              # truncated or foreign file: compile, then overwrite
            bucket.reset()

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


@once
def _bytecode_cache():
    if os.environ.get("TORSH_JIT_TEMPLATE_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from ..cache import _default_root
    tag = hashlib.sha256(repr(sorted((k, getattr(v, "__name__", v)) for k, v in OPTIONS.items()))
                         .encode()).hexdigest()[:8]
    d = Path(_default_root()) / f"templates-{jinja2.__version__}-{tag}"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _Bytecode(str(d))


@once
def environment(directory: str) -> jinja2.Environment:
    """The environment for templates under `directory`."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(directory),
                              bytecode_cache=_bytecode_cache(), **OPTIONS)


def template(name: str) -> jinja2.Template:
    """A template of the package's templates/ directory, by its path there."""
    from ..target import data_dir
    return environment(str(data_dir("templates"))).get_template(name)
