"""Autotuning: spaces, search, records across processes, buckets, TORSH_JIT_AUTOTUNE=0,
failing candidates, and that every candidate of a space computes what numpy computes.

Tiny shapes and budgets: these check behaviour, not speed (benchmarks/tune.py does that).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit import errors as E
from torsh_jit import tune as T
from torsh_jit.compiler import build, plan
from torsh_jit.ir.tracer import ArgSpec, trace
from torsh_jit.schedule.space import effective
from torsh_jit import parse_target
from torsh_jit.tune import records as R
from torsh_jit.tune.search import Budget, JointSpace, search

ROOT = Path(__file__).resolve().parents[1]

FUNCS = '''
import numpy as np

def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

def mm(a, b):
    return a @ b

def gelu_mul(x, y):
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))) * y

def colsum(x):
    return x.sum(axis=0) * 2.0

def longrow(x):
    return x.sum(axis=-1)
'''


@pytest.fixture
def funcs(tmp_path):
    """The functions above in a file of their own (tuning identifies a function by source)."""
    import importlib.util
    f = tmp_path / "tfuncs.py"
    f.write_text(FUNCS)
    spec = importlib.util.spec_from_file_location("tfuncs", f)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.FILE = f
    return mod


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORSH_JIT_AUTOTUNE", raising=False)
    # other processes on a shared test machine must not make these tests re-time or retry
    monkeypatch.setattr("torsh_jit.tune.measure.BUSY_LIMIT", 2.0)
    return tmp_path / "cache"


def _tune(fn, args, **kw):
    kw.setdefault("budget_s", 20)
    kw.setdefault("progress", False)
    kw.setdefault("workers", 0)
    kw.setdefault("confirm", False)
    return T.tune(fn, args, **kw)


# -- buckets ------------------------------------------------------------------------------------
def test_buckets_round_each_dim_up_to_a_power_of_two():
    assert [R.bucket_dim(n) for n in (0, 1, 2, 3, 1000, 1024, 1025)] == [0, 1, 2, 4, 1024, 1024, 2048]
    a = lambda *s: ArgSpec("array", s, "float32")
    assert R.bucket_of((a(1000, 1000),)) == R.bucket_of((a(1024, 513),)) == "float32[1024,1024]"
    assert R.bucket_of((a(1025, 1000),)) != R.bucket_of((a(1024, 1000),))
    assert R.bucket_of((a(1, 1000),)) != R.bucket_of((a(2, 1000),))     # broadcasting differs
    assert R.bucket_of((a(1000, 1000),), exact=True) == "exact:float32[1000,1000]"
    assert R.bucket_of((ArgSpec("array", (4,), "float64"),)) != R.bucket_of((ArgSpec("array", (4,), "float32"),))


def test_a_nearby_shape_uses_the_buckets_decision_and_exact_does_not(fresh_cache, funcs):
    x = np.zeros((100, 200), np.float32)
    res = _tune(funcs.softmax, (x,), trials=3)
    assert math.isfinite(res.time_s)
    k = tj.Kernel(funcs.softmax, "host")
    near = k.specs_of((np.zeros((120, 250), np.float32),))
    dec, _ = T.stored(funcs.softmax, near, k.target)
    assert dec is not None and dec.configs == res.configs
    dec_exact, _ = T.stored(funcs.softmax, near, k.target, exact=True)
    assert dec_exact is None
    far = k.specs_of((np.zeros((300, 200), np.float32),))
    assert T.stored(funcs.softmax, far, k.target)[0] is None


# -- spaces -------------------------------------------------------------------------------------
def _groups(fn, *arrays, target="host"):
    k = tj.Kernel(fn, target)
    specs = k.specs_of(arrays)
    g, _ = trace(fn, specs)
    p = plan(g, specs, k.target)
    return g, specs, p


CASES = {
    "elementwise": ("gelu_mul", [(257, 300), (257, 300)]),
    "reduce-rows": ("softmax", [(67, 1000)]),
    "reduce-rows-blocked": ("longrow", [(9, 9000)]),
    "reduce-columns": ("colsum", [(333, 130)]),
    "matmul": ("mm", [(37, 53), (53, 29)]),
    "matmul-square": ("mm", [(96, 128), (128, 96)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_space_starts_with_the_default_and_holds_distinct_candidates(case, funcs):
    name, shapes = CASES[case]
    g, specs, p = _groups(getattr(funcs, name), *[np.zeros(s, np.float32) for s in shapes])
    for grp, d in zip(p.part.groups, p.configs):
        space, key = T.space_of(grp, p.target, d)
        assert space.configs[0] == d
        keys = [key(c) for c in space.configs]
        assert len(set(keys)) == len(keys)
        assert len(space) > 1, "every CPU group kind has something to tune"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_candidate_computes_what_numpy_computes(case, funcs, rng):
    """The contract of a space: any candidate the tuner may pick is correct. All candidates
    of small spaces, a random sample of 12 from larger ones, on fresh random data."""
    name, shapes = CASES[case]
    fn = getattr(funcs, name)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ref = fn(*[a.astype(np.float64) for a in arrays])
    g, specs, p = _groups(fn, *arrays)
    assert len(p.part.groups) == 1
    space, _ = T.space_of(p.part.groups[0], p.target, p.configs[0])
    cands = list(space.configs)
    if len(cands) > 12:
        pick = rng.choice(len(cands) - 1, 11, replace=False) + 1
        cands = [cands[0]] + [cands[i] for i in sorted(pick)]
    for c in cands:
        q = plan(g, specs, p.target, configs=(c,))
        out = np.empty(ref.shape, np.float32)
        build(q).run(tuple(arrays) + (out,))
        np.testing.assert_allclose(out, ref, rtol=2e-4, atol=2e-4 * np.abs(ref).max(),
                                   err_msg=f"{case}: {c}")


def test_spaces_follow_the_target_limits(funcs):
    """Micro-tiles fit the registers each target declares; lanes follow its vector width."""
    a = np.zeros((64, 64), np.float32)
    for name in ("x86_64-sse42", "x86_64-avx2", "x86_64-avx512"):
        t = parse_target(name)
        k = tj.Kernel(funcs.mm, name)
        specs = k.specs_of((a, a))
        p = plan(trace(funcs.mm, specs)[0], specs, t)
        space, _ = T.space_of(p.part.groups[0], t, p.configs[0])
        assert all(c.mr * c.nr + c.nr + 1 <= t.vector_registers for c in space.configs)
        assert {c.lanes for c in space.configs} == {t.vector_bits // 32}
        sm = plan(trace(funcs.softmax, specs[:1])[0], specs[:1], t)
        s2, _ = T.space_of(sm.part.groups[0], t, sm.configs[0])
        assert max(c.lanes for c in s2.configs) == t.vector_bits // 32


def test_cuda_matmul_space_respects_the_templates_and_limits():
    """Rendered without a GPU: every candidate satisfies the mma template's rules, the
    shared memory and thread limits; a sample compiles to PTX where NVRTC is installed."""
    def mm(a, b):
        return a @ b
    t = parse_target("cuda-sm90")
    specs = (ArgSpec("array", (512, 512), "bfloat16"),) * 2
    p = plan(trace(mm, specs)[0], specs, t)
    space, key = T.space_of(p.part.groups[0], t, p.configs[0])
    assert space.configs[0] == p.configs[0] and len(space) > 50
    for c in space.configs:
        wtm, wtn = c.tile_m // c.warps_m, c.tile_n // c.warps_n
        assert c.mma and wtm % 16 == 0 and wtn % 16 == 0 and c.tile_k in (32, 64)
        assert c.threads == 32 * c.warps_m * c.warps_n <= t.limit("max_threads_per_block")
        assert c.stages * (c.tile_m + c.tile_n) * c.tile_k * 2 <= t.limit("max_shared_memory_per_block")
    joint = JointSpace([space], [key])
    assert joint.neighbours(joint.default), "the beam search can move from the default"
    from torsh_jit.compiler import render
    for c in space.configs[::len(space) // 5][:6]:
        render(plan(trace(mm, specs)[0], specs, t, configs=(c,)))
    try:
        from torsh_jit.backends.cuda import compile_ptx
        c = max(space.configs, key=lambda c: c.tile_m * c.tile_n * c.stages)
        compile_ptx(render(plan(trace(mm, specs)[0], specs, t, configs=(c,))), t)
    except E.TorshJitError as err:
        if "nvrtc" not in str(err).lower() and "cupy" not in str(err).lower():
            raise


def test_cuda_event_timing_logic_without_a_gpu():
    from torsh_jit.backends.cuda import event_times
    clock = {"t": 0.0}
    launched = []

    class Ev:
        def record(self):
            self.t = clock["t"]

        def synchronize(self):
            pass

        def elapsed_since(self, other):
            return self.t - other.t

    def launch(i):
        launched.append(i)
        clock["t"] += 0.001 * (1 + i % 2)      # copy 1 is slower: rotation must show it

    ts = event_times(launch, 2, Ev, Ev, lambda: None, warmup=3, min_runs=10, max_runs=50, min_s=0.0)
    assert launched[:3] == [0, 1, 0] and len(ts) == 10
    assert sorted(set(round(t, 6) for t in ts)) == [0.001, 0.002]
    # the GPU is held before each batch of launches, so their host overhead is not timed
    holds = []
    launched.clear()
    ts = event_times(launch, 2, Ev, Ev, lambda: None, warmup=1, min_runs=25, max_runs=50, min_s=0.0,
                     hold=lambda: holds.append(len(launched)))
    assert len(ts) == 25 and holds == [1, 11, 21]


# -- search -------------------------------------------------------------------------------------
class _FakeMeasurer:
    """Time = a bowl in (mr, nr, nc) with its minimum away from the default; no compiling."""

    def __init__(self, space, best):
        self.fresh = 0
        self.best = best
        self.calls = []

    def known(self, c):
        return None

    def measure(self, cands, on_result=None):
        out = []
        for c in cands:
            self.fresh += 1
            self.calls.append(c)
            cfg = c[0]
            out.append(1.0 + sum((getattr(cfg, k) - v) ** 2 for k, v in self.best.items()) / 100)
        return out


def test_beam_search_finds_the_bottom_of_a_bowl_within_the_trials(funcs):
    a = np.zeros((1024, 1024), np.float32)
    g, specs, p = _groups(funcs.mm, a, a)
    space, key = T.space_of(p.part.groups[0], p.target, p.configs[0])
    joint = JointSpace([space], [key])
    assert joint.size > 64
    target_cfg = {"mr": 3, "nr": 3}
    m = _FakeMeasurer(space, target_cfg)
    strategy, seen = search(joint, m, Budget(30, trials=40))
    assert strategy == "beam" and m.fresh <= 40
    best = min(seen, key=seen.get)[0]
    assert (best.mr, best.nr) == (3, 3)
    assert m.calls[0] == joint.default


# -- records and processes ----------------------------------------------------------------------
def test_measurements_are_records_and_adding_a_candidate_measures_only_it(fresh_cache, funcs, monkeypatch):
    x = np.zeros((64, 300), np.float32)
    full_space_of = T.space_of
    held_back = {}

    def smaller(group, target, default):
        s, key = full_space_of(group, target, default)
        held_back["c"] = s.configs[-1]
        return s.__class__(s.default, s.configs[:-1], s.axes), key
    monkeypatch.setattr(T, "space_of", smaller)
    before = T.STATS["measured"]
    first = _tune(funcs.softmax, (x,), exhaustive=True)
    n_first = T.STATS["measured"] - before
    assert n_first == first.candidates >= 3
    monkeypatch.setattr(T, "space_of", full_space_of)
    before = T.STATS["measured"]
    second = _tune(funcs.softmax, (x,), exhaustive=True)
    assert T.STATS["measured"] - before == 1, "only the added candidate is measured"
    assert second.fresh == 1 and second.reused == n_first
    assert (held_back["c"],) in {c for c, _, _ in second.table}
    assert len(R.get_cache().keys(R.MEASURE_KIND)) == n_first + 1


def test_a_failing_candidate_scores_inf_and_tuning_goes_on(fresh_cache, funcs, monkeypatch):
    x = np.zeros((32, 200), np.float32)
    full_space_of = T.space_of

    def with_bad(group, target, default):
        s, key = full_space_of(group, target, default)
        bad = default.replace(lanes=64)              # vmath has no 64-lane functions
        return s.__class__(s.default, s.configs + (bad,), s.axes), (lambda c: (key(c), c.lanes))
    monkeypatch.setattr(T, "space_of", with_bad)
    res = _tune(funcs.softmax, (x,), exhaustive=True)
    bad = [r for r in res.table if r[0][0].lanes == 64]
    assert len(bad) == 1 and bad[0][1] == math.inf and bad[0][2]
    assert math.isfinite(res.time_s) and res.configs[0].lanes != 64
    assert R.get_measurement(res.subject, bad[0][0]) == math.inf    # remembered: not retried


SUBPROCESS = '''
import sys, numpy as np
sys.path.insert(0, {dir!r})
import torsh_jit as tj
from torsh_jit import tune as T
import tfuncs
k = tj.kernel(tfuncs.softmax, autotune=True, tune_budget_s=10, tune_trials=4)
x = np.random.default_rng(0).standard_normal({shape}).astype(np.float32)
out = k(x)
ref = np.exp(x - x.max(-1, keepdims=True)); ref /= ref.sum(-1, keepdims=True)
assert np.allclose(out, ref, rtol=1e-5, atol=1e-6)
print("MEASURED", T.STATS["measured"])
print("CONFIG", k.lower(x).configs[0])
'''


def _run(code, env):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=str(ROOT), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)


def test_a_second_process_uses_the_tuning_without_measuring(fresh_cache, funcs):
    env = {**os.environ, "TORSH_JIT_TUNE_WORKERS": "2"}
    code = SUBPROCESS.format(dir=str(funcs.FILE.parent), shape=(48, 333))
    first = _run(code, env)
    assert int(first["MEASURED"]) >= 2
    second = _run(code, env)
    assert int(second["MEASURED"]) == 0 and second["CONFIG"] == first["CONFIG"]
    # a nearby shape in the same bucket: no measuring either
    third = _run(SUBPROCESS.format(dir=str(funcs.FILE.parent), shape=(60, 400)), env)
    assert int(third["MEASURED"]) == 0 and third["CONFIG"] == first["CONFIG"]


def test_autotune_off_uses_stored_or_default_and_never_measures(fresh_cache, funcs, monkeypatch):
    monkeypatch.setenv("TORSH_JIT_AUTOTUNE", "0")
    x = np.random.default_rng(1).standard_normal((40, 300)).astype(np.float32)
    before = T.STATS["measured"]
    k = tj.kernel(funcs.softmax, autotune=True)
    out = k(x)
    assert T.STATS["measured"] == before
    d = tj.Kernel(funcs.softmax).lower(x).configs
    assert k.lower(x).configs == d
    np.testing.assert_allclose(out, tj.Kernel(funcs.softmax)(x), rtol=1e-6)
    # a stored decision is used, still without measuring
    monkeypatch.delenv("TORSH_JIT_AUTOTUNE")
    res = _tune(funcs.softmax, (np.zeros((40, 300), np.float32),), exhaustive=True)
    monkeypatch.setenv("TORSH_JIT_AUTOTUNE", "0")
    before = T.STATS["measured"]
    k2 = tj.kernel(funcs.softmax, autotune=True)
    k2(x)
    assert T.STATS["measured"] == before
    assert k2.lower(x).configs == res.configs


def test_dynamic_kernel_runs_each_buckets_tuned_configs(fresh_cache, funcs, monkeypatch):
    """An autotuned dynamic kernel: calls in a bucket with a stored decision run a symbolic
    variant with those configs, calls in buckets without one share the defaults' variant;
    TORSH_JIT_AUTOTUNE=0 measures nothing; every result is numpy's."""
    res = _tune(funcs.softmax, (np.zeros((40, 300), np.float32),), exhaustive=True)
    monkeypatch.setenv("TORSH_JIT_AUTOTUNE", "0")
    before = T.STATS["measured"]
    k = tj.kernel(funcs.softmax, autotune=True, dynamic=True)
    rng = np.random.default_rng(7)
    for n in (40, 33, 61, 3, 5, 200, 250, 36):
        x = rng.standard_normal((n, 300)).astype(np.float32)
        e = np.exp(x - x.max(-1, keepdims=True))
        np.testing.assert_allclose(k(x), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert T.STATS["measured"] == before
    assert k.compiles == 2, k.compiles       # the tuned bucket (33..64 rows) and the defaults
    tuned = [v for v in k._table.values() if getattr(v, "bucket", None)]
    assert len(tuned) == 1 and tuned[0].build[1].configs == res.configs


def test_exact_mode_tunes_per_shape(fresh_cache, funcs):
    x = np.zeros((33, 100), np.float32)
    k = tj.kernel(funcs.softmax, autotune="exact", tune_budget_s=5, tune_trials=2)
    before = T.STATS["measured"]
    k(x)
    assert T.STATS["measured"] > before
    assert T.stored(funcs.softmax, k.specs_of((x,)), k.target, exact=True)[0] is not None
    assert T.stored(funcs.softmax, k.specs_of((x,)), k.target, exact=False)[0] is None
    with pytest.raises(E.ArgumentError, match="autotune"):
        tj.kernel(funcs.softmax, autotune="sometimes")


# -- errors and the command line ----------------------------------------------------------------
def test_unknown_config_field_in_a_record_is_a_tune_error():
    with pytest.raises(E.TuneError, match="unknown Config field.*tiles") as info:
        R.config_from_json({"type": "Config", "lanes": 8, "tiles": 3})
    assert "lanes" in info.value.hint
    with pytest.raises(E.TuneError, match="unknown config type"):
        R.config_from_json({"type": "Nope"})
    c = tj.tune.records.config_from_json(R.config_to_json(tj.tune.records._config_types()["Config"](lanes=4, mr=2)))
    assert c.lanes == 4 and c.mr == 2


def test_cli_tune_prints_a_table_and_explain_shows_tuned_next_to_default(fresh_cache, funcs, capsys):
    from torsh_jit.cli import main
    ref = f"{funcs.FILE}:softmax"
    assert main(["tune", ref, "--arg", "f32[64,300]", "--budget-s", "10", "--trials", "4",
                 "--quiet", "--workers", "0", "--text-plot"]) == 0
    out = capsys.readouterr().out
    assert "vs default" in out and "(default)" in out and "time per candidate" in out
    assert main(["explain", ref, "--arg", "f32[64,300]", "--no-source"]) == 0
    out = capsys.readouterr().out
    assert "== tuning" in out and "tuned " in out and "default Config" in out
    assert main(["tune", ref, "--arg", "f32[64,,300"]) == 2
    err = capsys.readouterr().err
    assert "cannot read argument spec" in err and "hint" in err
    assert main(["tune", ref]) == 2
    assert "--arg" in capsys.readouterr().err


def test_progress_bar_lines_and_sixteen_bit_arg_specs():
    import io
    from torsh_jit.cli import _specs
    from torsh_jit.tune.progress import Progress
    buf = io.StringIO()
    bar = Progress(4, "tuning f", stream=buf)
    for t in (2e-3, 1e-3, 3e-3, 1e-3):
        bar.update(t, is_default=t == 2e-3)
    bar.close()
    last = buf.getvalue().strip().splitlines()[-1]
    assert "4/4" in last and "best 1.000 ms (2.00x default)" in last
    assert _specs(["bf16[64,32]", "f32[3]"])[0] == ArgSpec("array", (64, 32), "bfloat16")
    with pytest.raises(E.ArgumentError, match="cannot read argument spec") as info:
        _specs(["q7[3]"])
    assert info.value.where == "--arg q7[3]" and "bf16" in info.value.hint


def test_tune_plot_without_matplotlib_is_an_error_that_says_what_to_install(fresh_cache, funcs, tmp_path,
                                                                            monkeypatch, capsys):
    """Said before tuning starts, and no text file instead of the PNG asked for."""
    from torsh_jit.cli import main
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # looks uninstalled, wherever it is
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    png = tmp_path / "t.png"
    assert main(["tune", f"{funcs.FILE}:softmax", "--arg", "f32[8,16]", "--trials", "2", "--quiet",
                 "--workers", "0", "--plot", str(png)]) == 2
    cap = capsys.readouterr()
    assert "matplotlib" in cap.err and "pip install 'torsh-jit[plot]'" in cap.err
    assert "Traceback" not in cap.err and "measured now" not in cap.out
    assert not png.exists() and not Path(str(png) + ".txt").exists()
    res = T.TuneResult(None, (), (), (), 1.0, 1.0, "exhaustive", 1)
    with pytest.raises(E.TuneError, match="pip install matplotlib"):
        res.plot(str(png))


def test_progress_bar_ends_on_the_comparison_the_table_reports(fresh_cache, funcs, monkeypatch, capsys):
    """The search's first timings say the default is 2x slower; re-timed, every finalist
    ties, so the default is kept at 1.00x. The bar's last line, the chosen row of the table
    and the summary line all say so (timings are stand-ins: no real measurement needed)."""
    import re
    from torsh_jit.cli import main
    from torsh_jit.tune.measure import Measurer
    monkeypatch.setattr(Measurer, "_time_one",
                        lambda self, p, obj: (2e-3 if p.configs == self.p0.configs else 1e-3, 5, None))
    monkeypatch.setattr(Measurer, "confirm", lambda self, cands, rounds=6: {c: 1e-3 for c in cands})
    assert main(["tune", f"{funcs.FILE}:softmax", "--arg", "f32[64,300]", "--trials", "4",
                 "--workers", "0", "--budget-s", "60"]) == 0
    cap = capsys.readouterr()
    bar = re.findall(r"best ([\d.]+) ms \(([\d.]+)x default\)", cap.err)
    assert bar, cap.err
    summary = re.search(r"default ([\d.]+) ms, chosen ([\d.]+) ms: ([\d.]+)x", cap.out)
    chosen_row = re.search(r"^\s*\d+\s+([\d.]+)\s+([\d.]+)x .*<- chosen", cap.out, re.M)
    assert summary and chosen_row, cap.out
    assert bar[-1] == (summary.group(2), summary.group(3)) == chosen_row.groups()
    assert summary.group(3) == "1.00"
