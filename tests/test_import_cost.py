"""What a process loads, so that compile latency cannot regress unnoticed (issue 18): not a
timing (this suite runs on shared machines) but the modules in sys.modules.

`import torsh_jit` loads what running a cached CPU kernel needs (LLVM, to load its object,
and the launcher) and nothing that only compiling needs; a warm start (the kernel in the
disk cache, in a new process) stays out of the code generators, Jinja, the file lock and
the TOML parser too. benchmarks/latency.py has the times (results/latency-cpu.txt).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

# modules with their import cost here (2-core VM, byte-compiled), none needed to run a
# cached kernel
COMPILE_ONLY = {
    "networkx": "86-104 ms; fusion no longer uses it",
    "jinja2": "29 ms; templates are rendered only for a kernel not in the cache",
    "filelock": "12-17 ms; the cache locks with flock(2) itself (filelock only on Windows)",
    "tomllib": "1.5 ms; the target table comes from the store (cache/memo.py)",
    "difflib": "0.7 ms; for 'did you mean' only",
}
OWN_COMPILE_ONLY = ("torsh_jit.codegen", "torsh_jit.tune", "torsh_jit.backends.cuda",
                    "torsh_jit.backends.wgsl", "torsh_jit.backends.runners", "torsh_jit.explain",
                    "torsh_jit.cli")

_CHILD = r"""
import json, sys
import numpy as np
import torsh_jit as tj
at_import = sorted(sys.modules)
if sys.argv[1] == "call":
    x = np.linspace(-1, 1, 4096, dtype=np.float32)
    k = tj.kernel(lambda a, b: np.exp(a) * b + np.sin(b) * 0.5 - np.tanh(a * b))
    # np.allclose, not np.testing (which imports difflib)
    assert np.allclose(k(x, x), np.exp(x) * x + np.sin(x) * 0.5 - np.tanh(x * x),
                       rtol=1e-5, atol=1e-6)
from torsh_jit.backends.llvm import build
print(json.dumps({"import": at_import, "call": sorted(sys.modules), "codegen": build.STATS["codegen"]}))
"""


def _child(mode: str, cache) -> dict:
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(cache))
    env.pop("TORSH_JIT_CACHE", None)
    r = subprocess.run([sys.executable, "-c", _CHILD, mode], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _loaded(modules, names) -> list[str]:
    return sorted(m for m in modules if m in names or any(m.startswith(n + ".") for n in names))


def test_import_loads_nothing_only_compiling_needs(tmp_path):
    mods = _child("import", tmp_path)["import"]
    assert not _loaded(mods, COMPILE_ONLY), {m: COMPILE_ONLY.get(m.split(".")[0]) for m in
                                             _loaded(mods, COMPILE_ONLY)}
    assert not _loaded(mods, OWN_COMPILE_ONLY)
    # what a cached kernel's call needs is there already: it is not imported in the call
    assert {"llvmlite.binding", "torsh_jit.backends.llvm.launch"} <= set(mods)


def test_a_warm_start_loads_nothing_only_compiling_needs(tmp_path):
    first = _child("call", tmp_path)                # builds the kernel into the cache
    assert first["codegen"] == 1 and "jinja2" in first["call"]
    warm = _child("call", tmp_path)
    assert warm["codegen"] == 0                     # loaded from the cache
    assert not _loaded(warm["call"], COMPILE_ONLY), _loaded(warm["call"], COMPILE_ONLY)
    assert not _loaded(warm["call"], OWN_COMPILE_ONLY), _loaded(warm["call"], OWN_COMPILE_ONLY)
