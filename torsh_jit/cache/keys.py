"""Cache keys: `make_key`, and the one place each kind of key is written out.

A key is the sha256 of the canonical JSON of everything that can change an artifact. Every
caller asks here by what it stores, so what goes into each key is read in one file:

    code_hash      the code hash (version.code_hash), kept in the store under the files'
                   stats (cache/memo.py)
    plan_identity  what a plan's object is built from: groups, buffers, configs, target
    plan_key       a plan's object: its identity, the package version, the code hash and
                   the toolchain versions
    artifact_key   something made from a plan's object by one more tool (an executable,
                   a cubin): the plan's key and that tool's inputs
    runtime_key    the native runtime's object: its template and triple, LLVM, the code hash
    tuning_key     a tuning decision, or (with configs) one measured candidate

Key values are part of the on-disk contract (cache/FORMAT.md): a change here retires
every stored entry, so the functions are tested against the dicts they replaced.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re

from .. import version
from ..version import __version__
from .memo import remembered


_KEY_SCALARS = (str, int, float, bool, type(None))


def _canonical(value, path: str, active: set[int]):
    """A copy of `value` holding only JSON types; TypeError names the first foreign value.

    Types are checked exactly, not with isinstance: an IntEnum or a numpy scalar would
    otherwise hash as whatever json happens to print for it, and two different values could
    share a key. Dict keys must be str, because json turns 1 and "1" into the same key.
    """
    t = type(value)
    if t in _KEY_SCALARS:
        return value
    if t is list or t is tuple or t is dict:
        if id(value) in active:
            raise ValueError(f"make_key: {path} contains itself")
        active.add(id(value))
        try:
            if t is dict:
                out = {}
                for k, v in value.items():
                    if type(k) is not str:
                        raise TypeError(
                            f"make_key: {path} has a key {k!r} of type {type(k).__name__}; "
                            "dict keys must be str")
                    out[k] = _canonical(v, f"{path}[{k!r}]", active)
                return out
            # Tuples and lists hash alike, as they do in JSON.
            return [_canonical(v, f"{path}[{i}]", active) for i, v in enumerate(value)]
        finally:
            active.discard(id(value))
    raise TypeError(
        f"make_key: {path} is a {t.__module__}.{t.__qualname__}; key parts may hold only "
        "str, int, float, bool, None, list, tuple and dict (convert it, e.g. str(target) "
        "or int(n), before building the key)")


def make_key(parts: dict) -> str:
    """sha256 hex digest of the canonical JSON of `parts`.

    Canonical: sorted keys, separators (',', ':'), ASCII only, tuples as lists. So the key
    does not depend on dict insertion order and is stable across Python versions.
    """
    if type(parts) is not dict:
        raise TypeError(f"make_key: parts must be a dict, not {type(parts).__name__}")
    text = json.dumps(_canonical(parts, "parts", set()), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@functools.lru_cache(maxsize=None)
def code_hash() -> str:
    """version.code_hash() of this installed package, read from the store when every file
    it covers has the name, size, times and inode it had when the hash was stored (0.6-1.0
    ms to check on a 2-core VM, against 3.2-3.7 ms to hash the files); once a process."""
    package, data = version.this_tree()
    # the stats digested first: 910 values through _canonical took 0.5 ms, json.dumps 0.05
    files = hashlib.sha256(json.dumps(version.tree_stats(package, data)).encode()).hexdigest()
    key = make_key({"code hash of": [package, data], "package": __version__, "files": files})
    h = remembered("code", key, lambda: version.tree_hash(package, data).encode("ascii"))
    h = h.decode("ascii", "replace")
    return h if re.fullmatch(r"[0-9a-f]{64}", h) else version.tree_hash(package, data)


def identity(what: dict) -> str:
    """The key of what an artifact is made from, without versions: stored in the entry's
    meta (expect=) and compared on every read, so other code's object under a key that
    missed an input is rebuilt, never run."""
    return make_key(what)


def plan_identity(part, configs, target, *, symbols=(), guards=()) -> str:
    """What a plan's object is made from: the partition's groups and buffers (their reprs:
    the groups are canonical values; a symbolic size is spelt by name, never by its value),
    the configs, every field of the target, not describe() (a field added to Target is in
    the key by construction), and for symbolic sizes their order and guards."""
    # every field, shallow: dataclasses.asdict deep-copies each value (0.12 ms a plan, a
    # fiftieth of a warm start) into the same JSON; a field that is not a plain value
    # (another dataclass) makes _canonical raise rather than hash as something else
    fields = {f.name: getattr(target, f.name) for f in dataclasses.fields(target)}
    what = {"groups": repr(part.groups), "buffers": repr(part.buffers),
            "configs": repr(configs), "target": fields}
    if symbols:
        what["symbols"] = list(symbols)
        what["guards"] = [repr(g) for g in guards]
    return identity(what)


def plan_key(plan: str, tools: dict) -> str:
    """A plan's object: its identity, the package version, the code hash (code_hash)
    and the versions of the tools that build it."""
    return make_key({"plan": plan, "package": __version__, "code": code_hash(),
                     "tools": tools})


def artifact_key(plan: str, **parts) -> str:
    """An artifact made from a plan's object by one more tool (a linked executable, a
    cubin): the plan's key and what else that tool reads (its version, flags, sources)."""
    return make_key({"plan": plan, **parts})


def runtime_key(what: dict, llvm: str) -> str:
    """The native runtime's object: what it is made from (template text, triple, ...), the
    LLVM version, and the code hash (the build pipeline shapes it as much as the template)."""
    return make_key({**what, "llvm": llvm, "code": code_hash()})


def tuning_key(version: int, kernel: str, bucket: str, device: str, code: str,
               configs: list | None = None) -> str:
    """A tuning record (tune/records.py): the decision for a kernel at a shape bucket on a
    device by this code, or, with `configs` (as JSON), one measured candidate."""
    parts = {"v": version, "kernel": kernel, "bucket": bucket, "device": device, "code": code}
    if configs is not None:
        parts["configs"] = configs
    return make_key(parts)
