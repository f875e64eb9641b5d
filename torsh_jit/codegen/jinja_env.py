"""The Jinja environment every renderer uses, with compiled templates kept on disk.

Jinja turns a template into Python source and compiles it the first time a process asks for
it: 5-10 ms a template, and a CUDA module needs three, which was a fifth of a kernel's
first-call time. Like Python's __pycache__, the compiled form is kept in the cache directory
(TORSH_JIT_CACHE_DIR or the platform's user cache), under templates-<jinja version>-<tag>/,
keyed by Jinja on the template's name and checked against a hash of its source, so an edited
template is recompiled; each file carries a checksum and a format version (_Bytecode). It is independent of TORSH_JIT_CACHE=0 (which is about kernels):
TORSH_JIT_TEMPLATE_CACHE=0 turns it off. An unwritable directory or an unreadable file costs
only the compile.

Before either, a wheel's templates come compiled (jinja_shipped.py: modules written while
the wheel was built, byte-compiled by pip), so a machine that never ran torsh-jit compiles
none of them; each is used only for the exact template it was compiled from.
TORSH_JIT_SHIPPED_TEMPLATES=0 leaves them unused.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import jinja2

from ..once import once
from . import jinja_shipped as shipped
from .jinja_shipped import OPTIONS

log = logging.getLogger("torsh_jit")

_OFF = ("0", "false", "no", "off")

# Where the wheel's compiled templates are (jinja_shipped.py); None: not looked for. Read
# when an environment is made (tests point it at modules of their own).
SHIPPED: Path | None = (None if os.environ.get("TORSH_JIT_SHIPPED_TEMPLATES", "1").strip().lower()
                        in _OFF else Path(__file__).resolve().parents[1] / shipped.PACKAGE)


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
    if os.environ.get("TORSH_JIT_TEMPLATE_CACHE", "1").strip().lower() in _OFF:
        return None
    from ..cache import default_root
    d = Path(default_root()) / f"templates-{jinja2.__version__}-{shipped.options_tag()}"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _Bytecode(str(d))


def _run_module(path: Path) -> dict | None:
    """The namespace of the Python file at `path`, run as a module of its own (not put in
    sys.modules: each template's module holds the environment it was loaded into); its
    bytecode comes from __pycache__ when pip left it there. None if it is not there."""
    spec = importlib.util.spec_from_file_location(f"torsh_jit.{shipped.PACKAGE}.{path.stem}", path)
    if spec is None or not path.is_file():
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.__dict__


@once
def _shipped_index(directory: str) -> dict | None:
    """{"root\0name": (module file, sha256 of the template)} of the compiled templates in
    `directory`, or None: none there, or compiled by another Jinja or with other options."""
    try:
        ns = _run_module(Path(directory) / shipped.INDEX)
    except Exception as e:                # a damaged index: the templates compile
        log.debug("torsh-jit: the shipped templates' index in %s is unusable (%s)", directory, e)
        return None
    if ns is None:
        return None
    want = (shipped.FORMAT, jinja2.__version__, shipped.options_tag())
    if (ns.get("FORMAT"), ns.get("JINJA"), ns.get("OPTIONS")) != want:
        log.debug("torsh-jit: the shipped templates were compiled by Jinja %s (options %s); "
                  "this is Jinja %s: compiling them", ns.get("JINJA"), ns.get("OPTIONS"),
                  jinja2.__version__)
        return None
    return ns.get("TEMPLATES")


class _Loader(jinja2.FileSystemLoader):
    """Templates from `directory`, each from its shipped module where one was compiled from
    exactly this template (jinja_shipped.py), else compiled (through the bytecode cache)."""

    def __init__(self, directory: str, root: str | None, shipped_dir: Path | None):
        super().__init__(directory)
        self.root = root                  # the directory relative to templates/; None: outside
        self.shipped_dir = shipped_dir

    def load(self, environment, name, globals=None):
        index = (_shipped_index(str(self.shipped_dir))
                 if self.shipped_dir is not None and self.root is not None else None)
        entry = index.get(f"{self.root}\0{name}") if index else None
        if entry is not None:
            source, filename, uptodate = self.get_source(environment, name)
            module, digest = entry
            ns = _run_module(self.shipped_dir / module) if shipped.source_hash(source) == digest else None
            if ns is not None:
                t = environment.template_class.from_module_dict(
                    environment, ns, globals if globals is not None else {})
                t.filename = filename         # errors name the template, not the module
                t._uptodate = uptodate        # an edit while the process runs reloads it
                return t
        return super().load(environment, name, globals)


@once
def environment(directory: str) -> jinja2.Environment:
    """The environment for templates under `directory`."""
    from ..paths import data_dir
    root = os.path.relpath(os.path.abspath(directory), os.path.abspath(data_dir("templates")))
    root = "" if root == "." else root.replace(os.sep, "/")
    if root == ".." or root.startswith("../"):
        root = None
    return jinja2.Environment(loader=_Loader(directory, root, SHIPPED),
                              bytecode_cache=_bytecode_cache(), **OPTIONS)


def template(name: str) -> jinja2.Template:
    """A template of the package's templates/ directory, by its path there."""
    from ..paths import data_dir
    return environment(str(data_dir("templates"))).get_template(name)
