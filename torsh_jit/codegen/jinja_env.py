"""The Jinja environment every renderer uses, with compiled templates kept on disk.

Jinja turns a template into Python source and compiles it the first time a process asks for
it: 5-10 ms a template, and a CUDA module needs three, which was a fifth of a kernel's
first-call time. Like Python's __pycache__, the compiled form is kept in the cache directory
(TORSH_JIT_CACHE_DIR or the platform's user cache), under templates-<jinja version>-<tag>/,
keyed by Jinja on the template's name and checked against a hash of its source, so an edited
template is recompiled; each file carries a checksum and a format version (_Bytecode). It is independent of TORSH_JIT_CACHE=0 (which is about kernels):
TORSH_JIT_TEMPLATE_CACHE=0 turns it off. An unwritable directory or an unreadable file costs
only the compile.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

import jinja2

from ..once import once

log = logging.getLogger("torsh_jit")

# the options every environment gets; part of the directory name, since the code Jinja
# generates depends on them and its own key does not
OPTIONS = dict(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
               keep_trailing_newline=True, autoescape=False)


class _Bytecode(jinja2.BytecodeCache):
    """Jinja's compiled templates, each file framed like a kernel entry: a magic with a
    format version, the sha256 of the rest, then Jinja's own bytes (which check the
    template's source hash). A file that is truncated, flipped, empty, a directory or from
    another format is not loaded (logged at debug level): the template is compiled again
    and the file rewritten (atomically; a directory in its place is removed first), or, in
    a read-only directory, compiled in memory every time. Jinja's
    bytes are marshalled code, so a flipped byte that slipped through could render other
    text: the checksum is what guarantees it cannot."""

    MAGIC = b"TJTPL\x00\x01\x00"          # name, format version 1
    SUFFIX = ".tjtpl"

    def __init__(self, directory: str):
        self.directory = directory

    def _path(self, bucket) -> str:
        return os.path.join(self.directory, bucket.key + self.SUFFIX)

    def load_bytecode(self, bucket) -> None:
        path = self._path(bucket)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except IsADirectoryError:
            # not a file of ours: cleared so that dump_bytecode can put the compiled one here
            from ..cache import remove_in_place
            log.debug("torsh-jit template cache: %s is a directory; %s", path,
                      "removed it" if remove_in_place(path) else "ignoring it")
            return
        except OSError:                   # missing, unreadable
            return
        head = len(self.MAGIC) + 32
        body = data[head:]
        if len(data) <= head or not data.startswith(self.MAGIC) or \
                hashlib.sha256(body).digest() != data[len(self.MAGIC):head]:
            log.debug("torsh-jit template cache: %s is corrupt or of another format; "
                      "compiling the template", path)
            return
        try:
            bucket.bytecode_from_string(body)
        except Exception:                 # Jinja's own checks (another Python's marshal)
            log.debug("torsh-jit template cache: Jinja refused %s; compiling the template", path)
            bucket.reset()

    def dump_bytecode(self, bucket) -> None:
        body = bucket.bytecode_to_string()
        path = self._path(bucket)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tpl-")
        except OSError:                   # read-only or gone: compiling again is the fallback
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.MAGIC + hashlib.sha256(body).digest() + body)
            try:
                os.replace(tmp, path)
            except IsADirectoryError:     # a directory in the way (see load_bytecode)
                from ..cache import remove_in_place
                remove_in_place(path)
                os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def clear(self) -> None:
        for name in os.listdir(self.directory):
            if name.endswith(self.SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, name))


@once
def _bytecode_cache():
    if os.environ.get("TORSH_JIT_TEMPLATE_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from ..cache import default_root
    tag = hashlib.sha256(repr(sorted((k, getattr(v, "__name__", v)) for k, v in OPTIONS.items()))
                         .encode()).hexdigest()[:8]
    d = Path(default_root()) / f"templates-{jinja2.__version__}-{tag}"
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
