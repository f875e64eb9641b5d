"""Tuning records in the cache: one entry per measurement, one per decision.

    kind "tuning"  key = tuning_key(kernel, bucket, device, code, configs)   one measured candidate
    kind "tuned"   key = tuning_key(kernel, bucket, device, code)            the chosen configs

A measurement is its own entry, so a changed search space finds every candidate it still
holds already measured and measures only the new ones; nothing is ever invalidated by the
space. `code` is the kernel cache's one code hash (cache.code_hash: every file of the
package, its templates and targets), so a measurement never outlives the code it timed;
editing a default or a space retires measurements too, the price of a hash that no list
has to keep up with.
Payloads are canonical JSON (cache/FORMAT.md, "Tuning records").
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
from dataclasses import asdict, dataclass, fields

from .. import errors as E
from ..cache import code_hash, get_cache, tuning_key

RECORD_VERSION = 1
MEASURE_KIND = "tuning"
DECISION_KIND = "tuned"


# -- what a measurement is of -----------------------------------------------------------------
def bucket_dim(n: int) -> int:
    """A dimension's bucket: the next power of two (0 and 1 stay themselves: they change
    broadcasting and fusion, so they never share a bucket with other sizes)."""
    n = int(n)
    return n if n <= 1 else 1 << (n - 1).bit_length()


def bucket_of(specs, exact: bool = False) -> str:
    """The label of the shape bucket of these argument specs: dtype, layout and per-dim
    bucket of each argument ('exact:' and the exact shapes when asked)."""
    parts = []
    for s in specs:
        if s.kind == "scalar":
            parts.append(f"{s.dtype}{'~' if s.weak else ''}")
            continue
        dims = s.shape if exact else tuple(bucket_dim(d) for d in s.shape)
        lay = "" if s.strides is None else "/strided" + ("" if not exact else str(tuple(s.strides)))
        parts.append(f"{s.dtype}[{','.join(map(str, dims))}]{lay}")
    return ("exact:" if exact else "") + ";".join(parts)


def kernel_identity(fn) -> str:
    """A Python function as a tuning subject: its qualified name and source text, so the
    `torsh-jit tune` command and the program that imports the file agree, and an edited
    body is tuned anew. Functions without source (built in a REPL) use their bytecode."""
    name = getattr(fn, "__qualname__", getattr(fn, "__name__", "fn"))
    try:
        body = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        body = repr((code.co_code, code.co_consts, code.co_names)) if code else repr(fn)
    return name + ":" + hashlib.sha256(body.encode()).hexdigest()[:32]


def device_fingerprint(target) -> str:
    """The machine a time was measured on, as the target's backend describes it."""
    from ..backends import backend_for
    return backend_for(target).device_fingerprint(target)


@dataclass(frozen=True)
class Subject:
    """What one tuning is about: a kernel at a shape bucket on a device."""
    kernel: str
    bucket: str
    device: str
    code: str

    def decision_key(self) -> str:
        return tuning_key(RECORD_VERSION, self.kernel, self.bucket, self.device, self.code)

    def measure_key(self, configs) -> str:
        return tuning_key(RECORD_VERSION, self.kernel, self.bucket, self.device, self.code,
                          [config_to_json(c) for c in configs])


def subject(fn, specs, target, exact: bool = False) -> Subject:
    return Subject(kernel_identity(fn), bucket_of(specs, exact), device_fingerprint(target),
                   code_hash())


# -- configs as JSON --------------------------------------------------------------------------
def _config_types() -> dict:
    from ..schedule.config import Config
    from ..schedule.gpu import GpuConfig
    return {"Config": Config, "GpuConfig": GpuConfig}


def config_to_json(c) -> dict:
    return {"type": type(c).__name__, **{k: v for k, v in asdict(c).items()}}


def config_from_json(d: dict):
    """The config a record names; TuneError for a type or field this version does not know."""
    types = _config_types()
    if not isinstance(d, dict) or d.get("type") not in types:
        raise E.TuneError(f"a tuning record names an unknown config type {d.get('type') if isinstance(d, dict) else d!r}",
                          hint="the record was written by another version; `torsh-jit cache clear` "
                               "or retune with `torsh-jit tune`")
    cls = types[d["type"]]
    known = {f.name: f.type for f in fields(cls)}
    kw = {k: v for k, v in d.items() if k != "type"}
    unknown = sorted(set(kw) - set(known))
    if unknown:
        raise E.TuneError(f"unknown {cls.__name__} field(s) {', '.join(unknown)} in a tuning record",
                          hint=f"{cls.__name__} fields: {', '.join(known)}")
    for k, v in kw.items():
        if not isinstance(v, (int, bool)):
            raise E.TuneError(f"{cls.__name__}.{k} must be an int or bool, got {v!r}")
    return cls(**kw)


# -- reading and writing ----------------------------------------------------------------------
def _dump(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _load(payload: bytes | None):
    if payload is None:
        return None
    try:
        d = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("v") == RECORD_VERSION else None


def get_measurement(subj: Subject, configs, busy_limit: float | None = None) -> float | None:
    """The stored time of these configs in seconds (math.inf for a failed candidate), or None
    (also for a time taken while other processes used more than busy_limit of the machine:
    worth measuring again)."""
    d = _load(get_cache().get(MEASURE_KIND, subj.measure_key(configs)))
    if d is None:
        return None
    if busy_limit is not None and float(d.get("busy", 0.0)) > busy_limit:
        return None
    t = d.get("time_s")
    return math.inf if t is None else float(t)


def put_measurement(subj: Subject, configs, time_s: float, *, shape: str, repeats: int,
                    error: str | None = None, busy: float = 0.0) -> None:
    payload = {"v": RECORD_VERSION, "time_s": None if not math.isfinite(time_s) else time_s,
               "repeats": repeats, "shape": shape, "configs": [config_to_json(c) for c in configs],
               "busy": round(float(busy), 3)}
    if error:
        payload["error"] = error[:2000]
    get_cache().put(MEASURE_KIND, subj.measure_key(configs), _dump(payload),
                    {"bucket": subj.bucket, "kernel": subj.kernel})


@dataclass(frozen=True)
class Decision:
    """The stored outcome of a tuning: the configs to use and what they were measured at."""
    configs: tuple
    time_s: float
    default_time_s: float
    trials: int
    candidates: int
    strategy: str
    shape: str

    @property
    def speedup(self) -> float:
        return self.default_time_s / self.time_s if self.time_s and math.isfinite(self.default_time_s) else 1.0


def get_decision(subj: Subject) -> Decision | None:
    d = _load(get_cache().get(DECISION_KIND, subj.decision_key()))
    if d is None:
        return None
    try:
        return Decision(tuple(config_from_json(c) for c in d["configs"]), float(d["time_s"]),
                        float(d["default_time_s"] if d["default_time_s"] is not None else math.inf),
                        int(d["trials"]), int(d["candidates"]), str(d["strategy"]), str(d["shape"]))
    except (KeyError, TypeError, ValueError, E.TuneError):
        return None


def put_decision(subj: Subject, dec: Decision) -> None:
    payload = {"v": RECORD_VERSION, "configs": [config_to_json(c) for c in dec.configs],
               "time_s": dec.time_s,
               "default_time_s": dec.default_time_s if math.isfinite(dec.default_time_s) else None,
               "trials": dec.trials, "candidates": dec.candidates, "strategy": dec.strategy,
               "shape": dec.shape}
    get_cache().put(DECISION_KIND, subj.decision_key(), _dump(payload),
                    {"bucket": subj.bucket, "kernel": subj.kernel})


def autotune_enabled() -> bool:
    """TORSH_JIT_AUTOTUNE=0 turns measuring off: stored decisions or defaults only."""
    return os.environ.get("TORSH_JIT_AUTOTUNE", "1").strip().lower() not in ("0", "off", "false", "no")
