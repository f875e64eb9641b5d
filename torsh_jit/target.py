"""Targets are data: one TOML file each in targets/. Names parse and print round-trip.

`host` is the best CPU target this machine runs natively (by declared rank);
an unknown name is an error listing the known ones and the closest match.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from .errors import TargetError
from .once import once
from .paths import data_dir  # noqa: F401  (re-exported: where callers have always found it)

ALIASES = ("host", "cuda")


@dataclass(frozen=True)
class Target:
    name: str
    language: str
    triple: str = ""
    cpu: str = ""
    features: tuple[str, ...] = ()
    vector_bits: int = 128
    vector_registers: int = 16
    # kernels realign their frame to this many bytes (0: the ABI's): vector values that are
    # live across a vector-math call are spilled, and a spill that straddles cache lines
    # made whole processes 1.65x slower, depending on where the caller's stack happened to be
    stack_align: int = 0
    requires: tuple[str, ...] = ()
    runner: str = "native"        # how it runs when not natively: "qemu-aarch64", "wasmtime", ...
    rank: int = 0
    description: str = ""
    pointer_bits: int = 64
    fused_multiply_add: bool = True   # False: llvm.fma has no instruction (soft_fma in codegen)
    # runner data (read by torsh_jit/backends/runners only)
    emulator_cpu: str = ""        # qemu -cpu value; {vlen}/{vlen_bytes}: the emulated vector length
    vlen_env: str = ""            # environment variable choosing the emulated vector length
    vlens: tuple[int, ...] = ()   # vector lengths the emulator accepts; the first is the default
    vlen_probe: str = ""          # how the harness reads the vector length back ("sve", "rvv")
    cc: str = ""                  # cross C compiler that links the harness
    linker: str = ""              # wasm-ld
    sysroot: str = ""
    needs: tuple = ()             # ((("command", "qemu-aarch64"), ("debian", "qemu-user")), ...)
    # GPU targets: the architecture code is generated for, and declared limits ([limits] table)
    arch: str = ""                # "sm_90"
    limits: tuple = ()            # (("max_threads_per_block", 1024), ...), sorted
    dtypes: tuple[str, ...] = ()  # the dtypes its code can hold (empty: every dtype)

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"Target({self.name!r})"

    @property
    def feature_string(self) -> str:
        return ",".join(self.features)

    def lanes(self, dtype: str) -> int:
        """Vector lanes for a dtype at this target's native width."""
        from .ir.dtypes import ITEMSIZE
        return max(1, self.vector_bits // (8 * ITEMSIZE[dtype]))

    def limit(self, name: str, default=None):
        """A declared limit of a GPU target (max_threads_per_block, shared memory, ...)."""
        return dict(self.limits).get(name, default)

    def supports(self, dtype: str) -> bool:
        """The target's code can hold values of this dtype."""
        return not self.dtypes or dtype in self.dtypes

    def describe(self) -> dict:
        d = {"name": self.name, "language": self.language, "triple": self.triple, "cpu": self.cpu,
             "features": list(self.features), "vector_bits": self.vector_bits}
        if self.arch:
            d["arch"] = self.arch
            d["limits"] = dict(self.limits)
        if not self.fused_multiply_add:
            d["fused_multiply_add"] = False
        if self.dtypes:
            d["dtypes"] = list(self.dtypes)
        return d


def _parse_files() -> list[dict]:
    """The tables of targets/*.toml, in file name order."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    out = []
    for f in sorted(data_dir("targets").glob("*.toml")):
        with open(f, "rb") as fh:
            out.append(tomllib.load(fh))
    return out


def _tables() -> list[dict]:
    """_parse_files(), from the store while the package's files are as they were (the code
    hash covers targets/): tomllib took 2.1 ms a process for the 12 files, a third of a warm
    start's budget; the stored JSON loads in 0.1 ms."""
    from .cache import code_hash, make_key
    from .cache.memo import remembered
    try:
        raw = remembered("targets", make_key({"target tables of": code_hash()}),
                         lambda: json.dumps(_parse_files(), sort_keys=True).encode())
        tables = json.loads(raw)
        if isinstance(tables, list) and all(isinstance(t, dict) for t in tables):
            return tables
    except (TypeError, ValueError):      # a value JSON cannot hold (a TOML date): not stored
        pass
    return _parse_files()


def _target(table: dict) -> Target:
    """A Target from its file's table (lists become tuples: a Target is a hashable value)."""
    d = dict(table)
    for k in ("features", "requires", "vlens", "dtypes"):
        d[k] = tuple(d.get(k, ()))
    d["needs"] = tuple(tuple(sorted(n.items())) for n in d.get("needs", ()))
    d["limits"] = tuple(sorted(d.get("limits", {}).items()))
    return Target(**d)


@once
def known_targets() -> dict[str, Target]:
    out = {}
    for d in _tables():
        t = _target(d)
        out[t.name] = t
    return out


def parse(name) -> Target:
    """A Target from its name (or a Target); TargetError if unknown. A pure lookup in the
    table: the aliases `host` and `cuda` depend on the machine and are resolved by
    `runtime.aliases.resolve` (`tj.parse_target`)."""
    if isinstance(name, Target):
        return name
    if not isinstance(name, str):
        raise TargetError(f"a target is named by a string, got {type(name).__name__}")
    name = name.strip()
    if name in ALIASES:
        raise TargetError(f"{name!r} is an alias for a target of the machine that runs it, "
                          "not a target of the table",
                          hint="resolve it with torsh_jit.parse_target (runtime.aliases.resolve)")
    known = known_targets()
    if name in known:
        return known[name]
    import difflib
    names = sorted(known) + list(ALIASES)
    close = difflib.get_close_matches(name, names, n=1)
    raise TargetError(
        f"unknown target {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
        hint="known targets: " + ", ".join(names))
