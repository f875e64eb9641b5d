"""The cache key is complete by construction, and a load checks what the key names.

Two halves of issue 14: (a) the code hash in every key covers each file of the package and
its data, found by walking them, so editing or adding any file retires old artifacts;
(b) an entry records what it was built from, and one that names another plan is rebuilt,
never run. No hardware needed beyond the host CPU.
"""
from __future__ import annotations

import ast
import dataclasses
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit import compiler, version
from torsh_jit.backends.llvm import build as llvm_cpu
from torsh_jit.cache import get_cache
from torsh_jit.cache import keys as cache_keys
from torsh_jit.ir.tracer import spec_of
from torsh_jit.target import data_dir
from torsh_jit.tune import records

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PKG = Path(version.__file__).resolve().parent


# ------------------------------------------------------------------------- one version


def test_version_is_written_once():
    assert tj.__version__ == version.__version__
    # setuptools reads the same assignment (statically) for the distribution's version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "torsh_jit.version.__version__"}
    assigned = []
    for f in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets):
                assigned.append(f.relative_to(PKG).as_posix())
    assert assigned == ["version.py"]


# ------------------------------------------------------------------- (a) the code hash


@pytest.fixture
def tree(tmp_path):
    """A copy of the package and its data directories in the checkout layout, and its hash
    (from a wheel's layout too: its _templates and _targets become the data directories)."""
    pkg = tmp_path / "torsh_jit"
    inside = [f"_{name}" for name in version.DATA_DIRS]
    shutil.copytree(PKG, pkg, ignore=shutil.ignore_patterns("__pycache__", *inside))
    data = {}
    for name in version.DATA_DIRS:
        data[name] = tmp_path / name
        shutil.copytree(data_dir(name), data[name], ignore=shutil.ignore_patterns("__pycache__"))
    return pkg, data, version.tree_hash(pkg, data)


def test_code_hash_is_the_hash_of_this_tree(tree):
    pkg, data, h = tree
    assert version.code_hash() == version.tree_hash(PKG, {n: data_dir(n) for n in version.DATA_DIRS})
    assert h == version.code_hash()          # a copy hashes alike: names are relative
    # byte-compiled files are derived, and differ by interpreter: not part of the hash
    (pkg / "__pycache__").mkdir(exist_ok=True)
    (pkg / "__pycache__" / "compiler.cpython-312.pyc").write_bytes(b"\0" * 16)
    (pkg / "cli.pyc").write_bytes(b"\0")
    assert version.tree_hash(pkg, data) == h


# Files whose edit must retire every cached artifact: "pkg:" inside torsh_jit/, "templates:"
# and "targets:" in the data directories. The last ones do not exist yet: a new file is
# covered because the hash walks the directories, not a list.
EDITS = [
    "pkg:backends/llvm/build.py", "pkg:backends/cuda/launch.py", "pkg:backends/wgsl/launch.py",
    "pkg:backends/metal.py", "pkg:backends/runners/harness.c", "pkg:backends/runners/msl_threads.cpp",
    "pkg:backends/runners/msl_shim/metal_stdlib", "pkg:ir/tracer.py", "pkg:ir/ops.py",
    "pkg:tune/records.py", "pkg:backends/llvm/threads.py", "pkg:version.py",
    "templates:llvm/elementwise.ll.j2", "templates:cuda/prelude.cuh.j2", "targets:x86_64-avx2.toml",
    "pkg:backends/new_language.py", "pkg:backends/runners/new_shim.h",
    "templates:wgsl/new_kernel.wgsl.j2", "targets:new-target.toml",
]


@pytest.mark.parametrize("where", EDITS)
def test_editing_or_adding_any_file_changes_the_hash(tree, where):
    pkg, data, before = tree
    kind, rel = where.split(":")
    path = (pkg if kind == "pkg" else data[kind]) / rel
    is_new = not path.exists()
    comment = b"\n# an edit\n" if path.suffix in (".py", ".toml") else b"\n// an edit\n"
    with open(path, "ab") as f:
        f.write(comment)
    after = version.tree_hash(pkg, data)
    assert after != before, f"{'adding' if is_new else 'editing'} {rel} left the code hash as it was"


def test_renaming_a_file_changes_the_hash(tree):
    pkg, data, before = tree
    (data["templates"] / "llvm" / "reduce.ll.j2").rename(data["templates"] / "llvm" / "reduce2.ll.j2")
    assert version.tree_hash(pkg, data) != before


def test_wheel_layout_hashes_like_the_checkout(tree, tmp_path):
    """Inside a wheel the data directories are torsh_jit/_templates and _targets: the same
    files give the same hash, so no layout misses a file the other covers."""
    pkg, data, h = tree
    for name, d in data.items():
        shutil.move(str(d), str(pkg / f"_{name}"))
    assert version.tree_hash(pkg, {n: pkg / f"_{n}" for n in data}) == h


def test_the_stats_cover_the_files_the_hash_reads(tree):
    """cache.keys.code_hash trusts a stored hash while tree_stats is unchanged: a file the
    hash reads and the stats miss could be edited under a stale hash."""
    pkg, data, _ = tree
    (pkg / "__pycache__").mkdir(exist_ok=True)
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    read = sorted(prefix + rel for prefix, root in version._roots(pkg, data)
                  for rel in version._files(root))
    assert [row[0] for row in version.tree_stats(pkg, data)] == read


def test_the_stored_code_hash_follows_an_edit(tree, tmp_path, monkeypatch):
    """The code hash kept in the store (cache/memo.py) is the tree's hash, and a new one
    after any edit, one that keeps the size and puts the mtime back included."""
    import os
    import time
    pkg, data, h = tree
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORSH_JIT_CACHE", raising=False)
    monkeypatch.setattr(version, "this_tree", lambda: (str(pkg), {k: str(v) for k, v in data.items()}))

    def stored():
        cache_keys.code_hash.cache_clear()
        return cache_keys.code_hash()

    def computed():
        version.code_hash.cache_clear()
        return version.code_hash()

    try:
        for _ in range(2):                        # computed and stored, then read back
            assert stored() == computed() == h
        assert list((tmp_path / "cache" / "v1" / "code").rglob("*.tjc"))
        path = pkg / "ir" / "ops.py"
        st = os.stat(path)
        body = bytearray(path.read_bytes())
        body[-2] ^= 0x01                           # same size
        time.sleep(0.02)                           # past the file system's clock tick
        path.write_bytes(bytes(body))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert stored() == computed() != h
    finally:
        cache_keys.code_hash.cache_clear()
        version.code_hash.cache_clear()


def _plan_of(fn, *args, target="host"):
    p, _ = tj.kernel(fn)._plan(tuple(spec_of(a) for a in args), target=target)
    return p


def test_kernel_key_and_tuning_records_use_the_one_code_hash(monkeypatch, rng):
    x = rng.standard_normal(64).astype(np.float32)
    fn = lambda x: np.exp(x) * 0.5  # noqa: E731
    base = _plan_of(fn, x)
    subject = records.subject(fn, (spec_of(x),), base.target)
    assert subject.code == version.code_hash()
    monkeypatch.setattr(cache_keys, "code_hash", lambda: "edited")
    monkeypatch.setattr(records, "code_hash", lambda: "edited")
    edited = _plan_of(fn, x)
    assert edited.key != base.key
    assert edited.identity == base.identity          # the same thing to build, by other code
    edited_subject = records.subject(fn, (spec_of(x),), base.target)
    assert edited_subject.decision_key() != subject.decision_key()


def test_every_target_field_is_in_the_key(rng):
    x = rng.standard_normal(64).astype(np.float32)
    p = _plan_of(lambda x: x * 2.0, x)
    # stack_align is not in Target.describe(), and changes the generated code
    t2 = dataclasses.replace(p.target, stack_align=p.target.stack_align + 64)
    p2 = compiler.plan(p.graph, p.specs, t2)
    assert p2.key != p.key and p2.identity != p.identity


# ------------------------------------------------------------ (b) checked when loaded


def test_an_entry_built_from_another_plan_is_rebuilt(monkeypatch, tmp_path, rng, caplog):
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path))
    x = rng.standard_normal(1000).astype(np.float32)
    f = lambda x: np.sin(x) * 3.0 + 0.25  # noqa: E731
    g = lambda x: np.cos(x) - 1.5  # noqa: E731
    pf, pg = _plan_of(f, x), _plan_of(g, x)
    assert pf.identity != pg.identity
    # g's object with f's symbol names, stored under f's key with g's record: what a key
    # that missed an input (or a writer that mixed up two plans) leaves behind. Loaded, it
    # would run and compute g.
    imposter = dataclasses.replace(pg, key=pf.key)
    obj = llvm_cpu.build_object(compiler.render(imposter), pg.target)
    cache = get_cache()
    cache.put("obj", pf.key, obj, {"target": pg.target.name, **pg.expect})
    assert cache.get("obj", pf.key) == obj           # by key alone it would be a hit
    compiler.LOADED.pop(pf.key, None)               # as a new process would start
    codegen = llvm_cpu.STATS["codegen"]
    with caplog.at_level(logging.WARNING, logger="torsh_jit"):
        out = tj.kernel(f)(x)
    np.testing.assert_allclose(out, np.sin(x) * 3.0 + 0.25, rtol=1e-5, atol=1e-6)
    assert llvm_cpu.STATS["codegen"] == codegen + 1
    assert "made from something else" in caplog.text and pf.key in caplog.text
    again, meta = cache.get_entry("obj", pf.key, expect=pf.expect)
    assert meta["plan"] == pf.identity and again != obj, "the entry was not rewritten"
    # and the rewritten entry is a hit from now on
    compiler.LOADED.pop(pf.key, None)
    out2 = tj.kernel(f)(x)
    assert llvm_cpu.STATS["codegen"] == codegen + 1
    np.testing.assert_allclose(out2, np.sin(x) * 3.0 + 0.25, rtol=1e-5, atol=1e-6)


def test_an_object_from_a_worker_is_checked_too(monkeypatch, tmp_path, rng):
    """compiler.build(p, obj) (the tuner's path) does not keep a stored entry of another plan."""
    monkeypatch.setenv("TORSH_JIT_CACHE_DIR", str(tmp_path))
    x = rng.standard_normal(333).astype(np.float32)
    f = lambda x: np.tanh(x) * 2.0 - 0.5  # noqa: E731
    pf = _plan_of(f, x)
    cache = get_cache()
    cache.put("obj", pf.key, b"not this plan's object", {"plan": "0" * 64})
    compiler.LOADED.pop(pf.key, None)
    fn = compiler.build(pf, llvm_cpu.build_object(compiler.render(pf), pf.target))
    out = np.empty_like(x)
    fn.run((x, out))
    np.testing.assert_allclose(out, np.tanh(x) * 2.0 - 0.5, rtol=1e-5, atol=1e-6)
    assert cache.get_entry("obj", pf.key)[1]["plan"] == pf.identity
