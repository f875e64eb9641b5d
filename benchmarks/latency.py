"""Compile latency as a user meets it: each figure is the median over several NEW processes.

    python benchmarks/latency.py                  # the checkout, byte-compiled (15 processes a figure)
    python benchmarks/latency.py --wheel          # a wheel of the checkout, installed (pip) first
    python benchmarks/latency.py -n 25 --json out.json

The figures (issue 18, item 5), each against its target:

    import            `import torsh_jit` in a new process, after `import numpy` (timed too,
                      beside it): torsh-jit's share is its own modules and its other
                      dependencies (llvmlite, platformdirs, ...)
    new kernel        a kernel not in the cache, from the call to its result, on a machine
                      that has run torsh-jit before (another kernel of the same ops was
                      built in the cache directory: the templates it needs are compiled,
                      the native runtime is there, the kernel is not)
    never ran         the same with an empty TORSH_JIT_CACHE_DIR (no compiled templates, no
                      native runtime, no kernels), as on a machine that never ran torsh-jit
    warm start        a kernel in the persistent cache, from the call to its result

The kernel is an elementwise chain on 4096 float32 (exp, sin, tanh: 8 ops) on the host
target, checked against numpy. Every process gets a fresh cache directory (a copy of a
prepared one where the figure needs one), so no run sees another's writes, and the
processes of the four figures are interleaved, so a neighbour's load spreads over all of
them. Times are taken inside the child (time.perf_counter), so the interpreter's own
start-up, the same with or without torsh-jit, is not in them; `python -c pass` is printed
for scale.

Python modules are byte-compiled, as pip leaves an installed wheel (Python's bytecode goes
to a private PYTHONPYCACHEPREFIX, filled by the preparing runs, so the checkout is left
alone): --source keeps the environment's own setting instead (with PYTHONDONTWRITEBYTECODE=1
every process compiles torsh-jit's modules from source). --wheel measures what `pip install`
gives a user: the checkout's wheel, with whatever it ships precompiled.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIGURES = [  # key, label, target in ms (None: printed for scale)
    ("bare", "python -c pass (whole process)", None),
    ("numpy", "import numpy", None),
    ("import", "import torsh_jit (after numpy)", 100.0),
    ("both", "import numpy + torsh_jit", None),
    ("new", "new kernel (ran torsh-jit before)", 100.0),
    ("never", "new kernel (never ran torsh-jit)", 200.0),
    ("warm", "warm start (kernel cached)", 5.0),
]

# the child: numpy, then torsh_jit, then (optionally) one call; prints the times as JSON
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import torsh_jit as tj
t2 = time.perf_counter()
out = {"numpy": t1 - t0, "import": t2 - t1, "file": tj.__file__}
if sys.argv[1] == "other":
    # another kernel of the same ops (so the same templates), other constants and size
    x = np.ones(1000, np.float32)
    tj.kernel(lambda a, b, c: np.exp(a) * b - np.sin(c) * 0.25 + np.tanh(a + c))(x, x, x)
if sys.argv[1] == "call":
    @tj.kernel
    def chain(a, b, c):
        return np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)
    a = np.linspace(-1, 1, 4096, dtype=np.float32)
    t3 = time.perf_counter()
    r = chain(a, a, a)
    t4 = time.perf_counter()
    want = np.exp(a) * a + np.sin(a) * 0.5 - np.tanh(a * a)
    assert np.allclose(r, want, rtol=1e-5, atol=1e-6), "wrong result"
    out["call"] = t4 - t3
out["modules"] = sorted(m for m in ("networkx", "llvmlite", "jinja2", "filelock", "tomllib")
                        if m in sys.modules)
print(json.dumps(out))
"""


class Children:
    """Runs the child with torsh_jit importable from `package_path` and bytecode as asked."""

    def __init__(self, package_path: Path, work: Path, source: bool):
        self.env = dict(os.environ)
        self.env.pop("TORSH_JIT_CACHE", None)
        self.env["PYTHONPATH"] = os.pathsep.join([str(package_path)] + [
            p for p in [os.environ.get("PYTHONPATH")] if p])
        if not source:
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")

    def run(self, mode: str, cache_dir: str) -> dict:
        r = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                           env=dict(self.env, TORSH_JIT_CACHE_DIR=cache_dir), timeout=300,
                           cwd=cache_dir)
        if r.returncode:
            raise SystemExit(f"child ({mode}) failed:\n{r.stderr}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def bare(self) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=self.env)
        return time.perf_counter() - t0


def install_wheel(root: Path, work: Path) -> Path:
    """The checkout's wheel, built and installed (no dependencies: the running environment's
    serve) into a directory of its own; pip byte-compiles it as it would for a user."""
    src, dist, site = work / "src", work / "dist", work / "site"
    # built from a copy: setuptools leaves build/ and an egg-info where it builds
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                   check=True, env=env, cwd=work)
    wheel = next(dist.glob("torsh_jit-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, env=env, cwd=work)
    return site


def fresh(work: Path, base: Path | None) -> str:
    d = Path(tempfile.mkdtemp(dir=work, prefix="run-"))
    if base is not None:
        shutil.copytree(base, d, dirs_exist_ok=True)
    return str(d)


class Tree:
    """One torsh-jit under test: its children, prepared cache directories and samples."""

    def __init__(self, root: Path, work: Path, wheel: bool, source: bool):
        work.mkdir()
        self.work = work
        self.children = Children(install_wheel(root, work) if wheel else root, work, source)
        for d in ("other", "kernel"):
            (work / d).mkdir()
        self.children.run("other", str(work / "other"))     # also fills the bytecode prefix
        self.where = str(Path(self.children.run("call", str(work / "kernel"))["file"]).parent)
        self.samples: dict[str, list] = {k: [] for k, _, _ in FIGURES}
        self.modules: dict[str, list] = {}

    def sample(self) -> None:
        ch, work, samples = self.children, self.work, self.samples
        samples["bare"].append(ch.bare())
        r = ch.run("import", fresh(work, None))
        samples["numpy"].append(r["numpy"])
        samples["import"].append(r["import"])
        samples["both"].append(r["numpy"] + r["import"])
        self.modules["import"] = r["modules"]
        for name, base in (("new", work / "other"), ("never", None), ("warm", work / "kernel")):
            r = ch.run("call", fresh(work, base))
            samples[name].append(r["call"])
            self.modules[name] = r["modules"]

    def figures(self) -> dict:
        out = {}
        for key, label, target in FIGURES:
            xs = [x * 1e3 for x in self.samples[key]]
            out[key] = {"label": label, "median_ms": round(statistics.median(xs), 2),
                        "min_ms": round(min(xs), 2), "max_ms": round(max(xs), 2),
                        "target_ms": target}
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="new processes per figure (default 15)")
    ap.add_argument("--wheel", action="store_true",
                    help="build this checkout's wheel and measure it installed (pip, no deps)")
    ap.add_argument("--source", action="store_true",
                    help="leave the environment's bytecode setting as it is (see the docstring)")
    ap.add_argument("--compare", type=Path, default=None, metavar="CHECKOUT",
                    help="also measure another checkout (an older commit, say), interleaved "
                         "with this one, so both meet the same load")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ns = ap.parse_args(argv)
    roots = [ROOT] + ([ns.compare.resolve()] if ns.compare else [])
    with tempfile.TemporaryDirectory(prefix="tj-latency-") as tmp:
        trees = [Tree(r, Path(tmp) / f"t{i}", ns.wheel, ns.source) for i, r in enumerate(roots)]
        for _ in range(ns.n):
            for t in trees:
                t.sample()
    how = ("installed wheel" if ns.wheel else "checkout") + (
        ", bytecode as the environment has it" if ns.source else ", byte-compiled")
    print(f"torsh-jit compile latency ({how}); medians of {ns.n} new processes a figure "
          f"(min-max), Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    figures = [t.figures() for t in trees]
    names = ["this"] + (["compared"] if ns.compare else [])
    for name, root, t in zip(names, roots, trees):
        print(f"  {name}: {root} (imported from {t.where})")
    head = "".join(f" {n + ' median':>16s} {'min-max':>13s}" for n in names)
    print(f"{'figure':36s}{head}   target")
    for key, label, target in FIGURES:
        cells = ""
        for f in figures:
            lo, hi = f[key]["min_ms"], f[key]["max_ms"]
            span = f"{lo:.1f}-{hi:.1f}" if hi < 20 else f"{lo:.0f}-{hi:.0f}"
            cells += f" {f[key]['median_ms']:16.1f} {span:>13s}"
        m = figures[0][key]["median_ms"]
        verdict = "" if target is None else f"<= {target:g} {'ok' if m <= target else 'MISSED'}"
        print(f"{label:36s}{cells}   {verdict}")
    for name, t in zip(names, trees):
        print(f"modules loaded ({name}; of networkx, llvmlite, jinja2, filelock, tomllib): "
              + "; ".join(f"{k}: {', '.join(v) or 'none'}" for k, v in t.modules.items()))
    if ns.json:
        Path(ns.json).write_text(json.dumps(
            {"n": ns.n, "how": how, "trees": [
                {"root": str(r), "imported_from": t.where, "figures": f, "modules": t.modules}
                for r, t, f in zip(roots, trees, figures)]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
