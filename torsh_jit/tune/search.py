"""Search over a function's joint space (one config per group): exhaustive or beam search.

Exhaustive when the space holds at most EXHAUSTIVE_MAX candidates (every group kind but
matmul on the CPU targets, typically 5 to 40 candidates). Larger spaces get a beam search
over the axes' ordered values: start from the default and a few random candidates, then
repeatedly measure the unmeasured neighbours (one axis one step, then two axes at once) of
the best BEAM candidates, with a random candidate per round for exploration, until the
best has not improved by 1% for two rounds and its neighbourhood is measured, or the
budget is spent.

Why beam search: the axes are ordinal and time is close to unimodal along each one
(micro-tile sizes, blocks, unroll), so a local search from the default heuristic (already
good) finds the optimum in a few dozen trials; a cost model would need training data we do
not have per machine, and an evolutionary search needs populations far larger than the
budget that users accept (tens of seconds). The beam (3 wide) and the random pick keep it
from settling on the first local optimum.
"""
from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass

EXHAUSTIVE_MAX = 64
BEAM = 3
BATCH = 8


@dataclass
class Budget:
    seconds: float = 60.0
    trials: int | None = None       # fresh measurements (stored ones are free)
    start: float = 0.0

    def __post_init__(self):
        self.start = self.start or time.monotonic()

    def left_s(self) -> float:
        return self.seconds - (time.monotonic() - self.start)


class JointSpace:
    """Candidates are tuples of configs, one per group, each from that group's space."""

    def __init__(self, spaces, keyfns):
        self.spaces = spaces                   # GroupSpace per group
        self.keyfns = keyfns                   # config -> effective key, per group
        self.index = [{kf(c): c for c in reversed(s.configs)} for s, kf in zip(spaces, keyfns)]
        self.size = math.prod(len(s) for s in spaces)

    @property
    def default(self) -> tuple:
        return tuple(s.default for s in self.spaces)

    def all(self) -> list[tuple]:
        return list(itertools.product(*(s.configs for s in self.spaces)))

    def random(self, rng) -> tuple:
        return tuple(rng.choice(s.configs) for s in self.spaces)

    def _step(self, gi: int, cfg, axis: str, values: tuple, d: int):
        v = getattr(cfg, axis)
        if v in values:
            j = values.index(v) + d
        else:      # the default's own value, between two of the axis's: the next one that way
            side = [k for k, x in enumerate(values) if (x - v) * d > 0]
            j = (side[0] if d > 0 else side[-1]) if side else -1
        if not 0 <= j < len(values):
            return None
        c = cfg.replace(**{axis: values[j]})
        return self.index[gi].get(self.keyfns[gi](c))

    def neighbours(self, cand: tuple) -> list[tuple]:
        out = []
        for gi, (s, cfg) in enumerate(zip(self.spaces, cand)):
            axes = [a for a in s.axes if len(a[1]) > 1]
            moves = [(a, d) for a in axes for d in (-1, 1)]
            for (name, vals), d in moves:
                c = self._step(gi, cfg, name, vals, d)
                if c is not None:
                    out.append(cand[:gi] + (c,) + cand[gi + 1:])
            for ((n1, v1), d1), ((n2, v2), d2) in itertools.combinations(moves, 2):
                if n1 == n2:
                    continue
                c = self._step(gi, cfg, n1, v1, d1)
                c = c and self._step(gi, c, n2, v2, d2)
                if c is not None:
                    out.append(cand[:gi] + (c,) + cand[gi + 1:])
        return list(dict.fromkeys(x for x in out if x != cand))


def search(space: JointSpace, measurer, budget: Budget, *, exhaustive: bool | None = None,
           seed: int = 0, on_result=None) -> tuple[str, dict]:
    """Measure candidates within the budget; (strategy name, {candidate: seconds})."""
    rng = random.Random(seed)
    if exhaustive is None:
        exhaustive = space.size <= EXHAUSTIVE_MAX
    seen: dict = {}

    def run(batch):
        batch = [c for c in dict.fromkeys(batch) if c not in seen]
        # stored measurements cost nothing: take them all; fresh ones within the budget
        fresh = []
        for c in batch:
            t = measurer.known(c)
            if t is not None:
                seen[c] = t
                if on_result:
                    on_result(c, t)
            else:
                fresh.append(c)
        if budget.trials is not None:
            fresh = fresh[:max(0, budget.trials - measurer.fresh)]
        if fresh and budget.left_s() > 0:
            for c, t in zip(fresh, measurer.measure(fresh, on_result=on_result)):
                if t is not None:
                    seen[c] = t

    def spent() -> bool:
        return budget.left_s() <= 0 or (budget.trials is not None and measurer.fresh >= budget.trials)

    run([space.default])
    if exhaustive:
        todo = [c for c in space.all() if c not in seen]
        while todo and not spent():
            run(todo[:BATCH])
            todo = todo[BATCH:]
        return "exhaustive", seen
    run([space.random(rng) for _ in range(3)])
    best_hist: list[float] = []
    stale = 0
    while not spent() and len(seen) < space.size:
        ranked = sorted((t, i, c) for i, (c, t) in enumerate(seen.items()) if math.isfinite(t))
        beam = [c for _, _, c in ranked[:BEAM]] or [space.default]
        batch = []
        for b in beam:
            batch += [n for n in space.neighbours(b) if n not in seen and n not in batch]
        frontier_empty = not batch
        batch = batch[:BATCH - 1]
        for _ in range(20):
            r = space.random(rng)
            if r not in seen and r not in batch:
                batch.append(r)
                break
        if not batch:
            break
        run(batch)
        best = min(seen.values())
        if best_hist and best > best_hist[-1] * 0.99:
            stale += 1
        else:
            stale = 0
        best_hist.append(best)
        if stale >= 2 and frontier_empty:
            break
        if stale >= 4:
            break
    return "beam", seen
