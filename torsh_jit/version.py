"""Which torsh-jit this is: the release version and a hash of the code itself.

`__version__` is written here and nowhere else: the package and pyproject.toml (setuptools
reads this assignment without importing anything) both take it from this line.

`code_hash()` is what lets a cache entry outlive a process: it covers every file of the
package and its data (templates, target files), found by walking the directories rather
than by a list, so a file added tomorrow is covered without anyone remembering to add it.
Editing a file that cannot change generated code (the CLI's wording, say) retires every
cached kernel too: rebuilding once is cheap, loading an object built by other code is not.
"""
from __future__ import annotations

import functools
import hashlib
import os

__version__ = "0.1.0"

# Data directories that ship inside the wheel as torsh_jit/_<name> and sit beside the
# package in a source checkout (paths.data_dir decides which).
DATA_DIRS = ("templates", "targets")

# Byte-compiled copies are derived from the .py files beside them and differ by interpreter;
# a wheel's compiled templates (_templates_py, codegen/jinja_shipped.py) from the templates,
# and each is used only for the template whose sha256 it records.
_SKIP_DIRS = {"__pycache__", "_templates_py"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def _files(root: str) -> list[str]:
    """Every file under root, as "/"-separated relative paths."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in _SKIP_DIRS]
        rel = os.path.relpath(d, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out += [prefix + f for f in files if not f.endswith(_SKIP_SUFFIXES)]
    return out


def _roots(package, data) -> list[tuple[str, str]]:
    """(name prefix, directory) of the package and of each data directory outside it."""
    package = os.path.abspath(package)
    roots = [("", package)]
    for name, d in sorted(data.items()):
        d = os.path.abspath(d)
        if os.path.commonpath([d, package]) != package:    # inside: the package walk has it
            roots.append((f"_{name}/", d))
    return roots


def tree_stats(package: str | os.PathLike, data: dict[str, str | os.PathLike]) -> list:
    """[name, size, mtime_ns, ctime_ns, inode] of every file tree_hash reads, in its order:
    what a stored code hash is checked against (cache.keys.code_hash), as Python checks a
    .pyc against its source's mtime and size, with ctime (no tool sets it back) and the
    inode (a file renamed into place) too. Reads no file: 0.6-1.0 ms for the 182 files of
    the package on a 2-core VM, where hashing them took 3.2-3.7 ms."""
    out = []

    def walk(prefix: str, d: str) -> None:
        with os.scandir(d) as it:
            entries = list(it)            # unsorted: the rows are sorted once, at the end
        for e in entries:
            if e.is_dir():        # as os.walk: a link to a directory is not entered
                if e.name not in _SKIP_DIRS and not e.is_symlink():
                    walk(f"{prefix}{e.name}/", e.path)
            elif not e.name.endswith(_SKIP_SUFFIXES):
                st = e.stat()
                out.append([prefix + e.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                            st.st_ino])

    for prefix, root in _roots(package, data):
        walk(prefix, root)
    out.sort(key=lambda row: row[0])
    return out


def tree_hash(package: str | os.PathLike, data: dict[str, str | os.PathLike]) -> str:
    """sha256 over the names and bytes of every file of `package` and of each data directory
    (named as it is inside a wheel, "_templates/...", so both layouts hash alike).
    Uncached and pure, so tests can point it at an edited copy."""
    roots = _roots(package, data)
    files = sorted((prefix + rel, os.path.join(root, rel)) for prefix, root in roots
                   for rel in _files(root))
    h = hashlib.sha256(__version__.encode() + b"\0")
    for name, path in files:
        with open(path, "rb") as f:
            body = f.read()
        # name, length, bytes: no two different trees give the same stream
        h.update(f"{name}\0{len(body)}\0".encode())
        h.update(body)
    return h.hexdigest()


def this_tree() -> tuple[str, dict[str, str]]:
    """The installed package's directory and its data directories (tree_hash's arguments)."""
    from .paths import data_dir
    return (os.path.dirname(os.path.abspath(__file__)),
            {name: str(data_dir(name)) for name in DATA_DIRS})


@functools.lru_cache(maxsize=None)
def code_hash() -> str:
    """The hash of this installed torsh-jit (see the module docstring), computed once a
    process. Keys take it from cache.keys.code_hash, which keeps it in the store between
    processes (checked against tree_stats)."""
    return tree_hash(*this_tree())
