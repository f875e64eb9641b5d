"""Autotuning: search each fused group's schedule space, measure, remember.

    space     schedule/space.py (LLVM CPU targets), backends/<lang>.tune_space (GPUs)
    search    search.py: exhaustive up to 64 candidates, else beam search from the default
    measure   measure.py: parallel compilation (workers.py), checked and rotated timing
    records   records.py: one cache entry per measurement, one per decision; shape buckets

`tune(fn, args, target)` measures and stores; `resolve(...)` is what `@tj.kernel(autotune=
True)` calls at a new shape bucket: a stored decision if there is one, else a tuning (unless
TORSH_JIT_AUTOTUNE=0, which never measures: stored decision or defaults).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .. import errors as E
from .measure import STATS, Measurer
from ..backends import backend_for
from .records import (Decision, Subject, autotune_enabled, bucket_of, get_decision, put_decision,
                      subject)
from .search import EXHAUSTIVE_MAX, Budget, JointSpace, search

PREFER_DEFAULT_WITHIN = 0.03     # a winner less than 3% ahead of the default is within this VM's noise: keep the default

__all__ = ["tune", "resolve", "TuneResult", "STATS", "autotune_enabled", "bucket_of", "space_of"]


def space_of(group, target, default):
    """(GroupSpace, effective-key function) of a group on a target, from its backend."""
    be = backend_for(target)
    return be.tune_space(group, target, default), (lambda c, g=group: be.tune_key(g, c, target))


@dataclass
class TuneResult:
    subject: Subject
    kinds: tuple
    configs: tuple                 # chosen
    default: tuple
    time_s: float
    default_time_s: float
    strategy: str
    candidates: int                # size of the joint space
    table: list = field(default_factory=list)   # (candidate, seconds, error) best first
    wall_s: float = 0.0
    fresh: int = 0                 # measured now
    reused: int = 0                # read from records
    busy: float = 0.0              # most of the machine other processes took during a timing

    def busy_note(self) -> str:
        from .measure import BUSY_LIMIT, RETRIES
        if self.busy <= BUSY_LIMIT:
            return ""
        return (f"note: other processes used up to {self.busy:.0%} of this machine while candidates "
                f"were timed (after {RETRIES} retries); times may be inflated")

    @property
    def speedup(self) -> float:
        return self.default_time_s / self.time_s if self.time_s and math.isfinite(self.default_time_s) else 1.0

    def format_table(self, top: int = 10) -> str:
        lines = [f"{'rank':>4}  {'time ms':>9}  {'vs default':>10}  config"]
        for i, (c, t, err) in enumerate(self.table[:top]):
            mark = " (default)" if c == self.default else ""
            mark += " <- chosen" if c == self.configs else ""
            txt = "; ".join(str(x) for x in c)
            if math.isfinite(t):
                lines.append(f"{i + 1:>4}  {t * 1e3:>9.3f}  {self.default_time_s / t:>9.2f}x  {txt}{mark}")
            else:
                lines.append(f"{i + 1:>4}  {'failed':>9}  {'':>10}  {txt}{mark}: {err}")
        if len(self.table) > top:
            lines.append(f"  ... {len(self.table) - top} more")
        return "\n".join(lines)

    def text_plot(self, width: int = 50, rows: int = 40) -> str:
        """Time against config rank (sorted), as bars; the default is marked."""
        ok = [(c, t) for c, t, _ in self.table if math.isfinite(t)]
        if not ok:
            return "(no successful candidate)"
        step = max(1, -(-len(ok) // rows))
        shown = ok[::step]
        if ok[-1] not in shown:
            shown.append(ok[-1])
        if not any(c == self.default for c, _ in shown):
            shown += [(c, t) for c, t in ok if c == self.default]
            shown.sort(key=lambda ct: ct[1])
        hi = max(t for _, t in shown)
        out = [f"time per candidate (ms), best first; {len(ok)} measured, one bar per {step}"]
        for c, t in shown:
            bar = "#" * max(1, round(width * t / hi))
            out.append(f"{t * 1e3:9.3f} {bar}{'  <- default' if c == self.default else ''}")
        return "\n".join(out)

    def plot(self, path: str) -> str:
        """A PNG of time against candidate rank (needs matplotlib: TuneError without it).
        Returns the path written; `text_plot()` needs nothing."""
        plt = pyplot()
        ok = [(c, t) for c, t, _ in self.table if math.isfinite(t)]
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(range(len(ok)), [t * 1e3 for _, t in ok], ".-")
        d = [i for i, (c, _) in enumerate(ok) if c == self.default]
        if d:
            ax.axhline(ok[d[0]][1] * 1e3, color="r", ls="--", label="default")
            ax.legend()
        ax.set_xlabel("candidate (sorted by time)")
        ax.set_ylabel("ms")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def pyplot():
    """matplotlib.pyplot on the Agg backend; a TuneError saying how to install it if missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise E.TuneError(f"plotting the tuning needs matplotlib, which is not installed ({e})",
                          hint="pip install matplotlib (or pip install 'torsh-jit[plot]'); "
                               "--text-plot prints a plot without it") from None
    return plt


def _setup(fn, args, target):
    """(Python function, Target, ArgSpecs, traced graph) of a tuning's subject; fn may be a
    @tj.kernel."""
    from .. import errors as E
    from ..intake import classify_args
    from ..ir.tracer import trace
    from ..runtime.aliases import resolve
    pyfn = getattr(fn, "python_function", fn)
    loc = E.user_frame()
    try:
        tgt = resolve(target)
    except E.TargetError as err:
        raise E.located(err, loc) from None
    specs = classify_args(pyfn, tuple(args), tgt, where=loc)
    graph, _ = trace(pyfn, specs)
    return pyfn, tgt, specs, graph


def tune(fn, args, target="host", *, budget_s: float = 60.0, trials: int | None = None,
         exact: bool = False, exhaustive: bool | None = None, workers: int | None = None,
         progress: bool = True, seed: int = 0, confirm: bool = True) -> TuneResult:
    """Tune `fn` (a function or @tj.kernel) for these arguments (arrays or ArgSpecs) on
    `target`; store every measurement and the decision. Measures even when
    TORSH_JIT_AUTOTUNE=0 (that switch is for automatic tuning)."""
    from ..compiler import plan
    from .progress import Progress
    from .workers import CompilePool
    t0 = time.monotonic()
    pyfn, tgt, specs, graph = _setup(fn, args, target)
    p0 = plan(graph, specs, tgt)
    spaces = [space_of(g, tgt, c) for g, c in zip(p0.part.groups, p0.configs)]
    joint = JointSpace([s for s, _ in spaces], [k for _, k in spaces])
    subj = subject(pyfn, specs, tgt, exact)
    reused0 = STATS["reused"]
    with CompilePool(workers if joint.size > 1 else 0) as pool:
        m = Measurer(subj, graph, specs, tgt, pool=pool, seed=seed)
        m.deadline = t0 + budget_s
        ex = exhaustive if exhaustive is not None else joint.size <= EXHAUSTIVE_MAX
        total = joint.size if ex else min(joint.size, trials or 64)
        bar = Progress(total, f"tuning {getattr(pyfn, '__name__', 'kernel')} {subj.bucket}",
                       enabled=progress)
        strategy, seen = search(joint, m, Budget(budget_s, trials), exhaustive=exhaustive, seed=seed,
                                on_result=lambda c, t: bar.update(t, is_default=c == joint.default))
        default_t = seen.get(joint.default, math.inf)
        finite = sorted((t, i, c) for i, (c, t) in enumerate(seen.items()) if math.isfinite(t))
        if confirm and len(finite) > 1 and time.monotonic() < m.deadline:
            finalists = [c for _, _, c in finite[:3]]
            if math.isfinite(default_t) and joint.default not in finalists:
                finalists.append(joint.default)
            seen.update(m.confirm(finalists))
            default_t = seen.get(joint.default, math.inf)
        best_t, best = min(((t, c) for c, t in seen.items()), key=lambda tc: tc[0],
                           default=(math.inf, joint.default))
        if math.isfinite(default_t) and default_t <= best_t * (1 + PREFER_DEFAULT_WITHIN):
            best_t, best = default_t, joint.default
        # the bar's last line reports the decision, as the table and summary do: the chosen
        # candidate against the default, both as re-timed by confirm (the search's first
        # timings, the default's taken cold, differ from those by up to 2x on a busy machine)
        bar.best, bar.default = best_t, default_t
        bar.close()
    table = sorted(((c, t, m.errors.get(c)) for c, t in seen.items()),
                   key=lambda r: (not math.isfinite(r[1]), r[1]))
    res = TuneResult(subj, tuple(g.kind for g in p0.part.groups), best, joint.default, best_t,
                     default_t, strategy, joint.size, table, time.monotonic() - t0, m.fresh,
                     STATS["reused"] - reused0, getattr(m, "busy", 0.0))
    if math.isfinite(best_t):
        put_decision(subj, Decision(best, best_t, default_t, m.fresh, joint.size, strategy,
                                    m.shape))
    return res


def _fits(configs, p0) -> bool:
    """A stored decision applies to this plan: one config per group, of the backend's type."""
    return len(configs) == len(p0.configs) and all(type(a) is type(b) for a, b in zip(configs, p0.configs))


def stored(fn, specs, target, graph=None, *, exact: bool = False):
    """(stored Decision or None, default plan) for these specs: never measures."""
    from ..compiler import plan
    from ..ir.tracer import trace
    if graph is None:
        graph, _ = trace(fn, specs)
    p0 = plan(graph, specs, target)
    dec = get_decision(subject(fn, specs, target, exact))
    if dec is not None and not _fits(dec.configs, p0):
        dec = None
    return dec, p0


def resolve(fn, graph, specs, target, *, mode=True, budget_s: float = 30.0,
            trials: int | None = None, allow_measure: bool = True, progress: bool = True):
    """The configs an autotuned kernel uses at these specs: the stored decision for the
    bucket (or exact shape when mode == "exact"); else, where measuring is allowed and
    TORSH_JIT_AUTOTUNE is not 0, a tuning now; else None (the defaults)."""
    exact = mode == "exact"
    dec, p0 = stored(fn, specs, target, graph, exact=exact)
    if dec is not None:
        return dec.configs
    if not (allow_measure and autotune_enabled()):
        return None
    if not backend_for(target).tunes_here(target):
        return None          # emulated targets' times say nothing about the real machine
    res = tune(fn, specs, target, budget_s=budget_s, trials=trials, exact=exact, progress=progress)
    return res.configs if math.isfinite(res.time_s) and _fits(res.configs, p0) else None
