"""The wheel's precompiled templates (torsh_jit/codegen/jinja_shipped.py): every template is
shipped, code rendered from the shipped modules is the code rendered from the templates
(byte for byte, on every kind of target), and a shipped module is used only for exactly the
template it was compiled from. A checkout ships none, so the modules are written here."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from torsh_jit.codegen import jinja_env, jinja_shipped
from torsh_jit.paths import data_dir

TESTS = Path(__file__).resolve().parents[1]

# the op corpus and a few GPU-shaped workloads lowered for a CPU target with and one
# without fused multiply-add, CUDA (SIMT and tensor-core GEMMs), WGSL and MSL: nothing is
# built or run. With argv[1] a directory, every template must come from the modules there.
_CHILD = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[2])
import jinja2
import torsh_jit as tj
from torsh_jit.codegen import jinja_env
if sys.argv[1] != "-":
    jinja_env.SHIPPED = Path(sys.argv[1])
    def compile(*a, **k):
        raise AssertionError(f"a template was compiled: {a[1:3]}")
    jinja2.Environment.compile = compile
else:
    jinja_env.SHIPPED = None
from op_corpus import CASES
out = {}
f32 = lambda *s: tuple(np.random.default_rng(0).standard_normal(x).astype(np.float32) for x in s)
extra = [("softmax", lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True), f32((64, 100))),
         ("colsum", lambda x: x.sum(axis=0), f32((300, 70))),
         ("gemm", lambda a, b: np.maximum(a @ b, 0), f32((128, 96), (96, 64)))]
work = [(c.name, c.fn(tj), c.make(np.random.default_rng(0))) for c in CASES] + extra
for t in ("host", "x86_64-sse42", "cuda-sm90a", "cuda-sm80", "wgsl", "metal"):
    for name, fn, args in work:
        try:
            src = tj.kernel(fn).lower(*args, target=t).source
        except tj.TorshJitError as e:
            src = type(e).__name__
        out[f"{t}/{name}"] = hashlib.sha256(src.encode()).hexdigest()
print(json.dumps(out))
"""


def _lower_all(*shipped: str, tmp_path: Path) -> list[dict]:
    """The children's outputs, one per argument, run side by side."""
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(tmp_path / "cache"), TORSH_JIT_CACHE="0",
               TORSH_JIT_TEMPLATE_CACHE="0")
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, s, str(TESTS / "targets")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in shipped]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-4000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_every_template_is_shipped_and_renders_alike(tmp_path):
    out = tmp_path / "shipped"
    n = jinja_shipped.write(data_dir("templates"), out)
    assert n == len(list(Path(data_dir("templates")).rglob("*.j2"))) and n > 40
    shipped, compiled = _lower_all(str(out), "-", tmp_path=tmp_path)
    assert shipped == compiled
    refused = {hashlib.sha256(e.encode()).hexdigest() for e in ("DTypeError", "UnsupportedOpError")}
    assert sum(v not in refused for v in compiled.values()) > 30     # most were rendered


def _env(templates: Path, shipped: Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja_env._Loader(str(templates), "", shipped), **jinja_shipped.OPTIONS)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A templates directory of two templates (one imports the other), compiled; Jinja's own
    compile counts how often it runs."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "_m.j2").write_text("{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}")
    (templates / "a.j2").write_text('{% import "_m.j2" as m %}[{{ m.twice(v) }}]\n')
    shipped = tmp_path / "shipped"
    jinja_shipped.write(templates, shipped)
    calls = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *a, **k: calls.append(a[1]) or real(self, *a, **k))
    return templates, shipped, calls


def test_a_shipped_template_renders_without_compiling(tiny):
    templates, shipped, calls = tiny
    t = _env(templates, shipped).get_template("a.j2")
    assert t.render(v=7) == "[77]\n" and calls == []
    assert t.filename == str(templates / "a.j2")        # errors name the template


def test_an_edited_template_is_compiled_not_taken_from_its_module(tiny):
    templates, shipped, calls = tiny
    (templates / "a.j2").write_text('{% import "_m.j2" as m %}<{{ m.twice(v) }}>\n')
    assert _env(templates, shipped).get_template("a.j2").render(v=7) == "<77>\n"
    assert calls == ["a.j2"]                             # the macros still come shipped


def test_modules_of_another_jinja_are_not_used(tiny):
    templates, shipped, calls = tiny
    index = shipped / jinja_shipped.INDEX
    index.write_text(index.read_text().replace(f"JINJA = {jinja2.__version__!r}", "JINJA = '0.1'"))
    assert _env(templates, shipped).get_template("a.j2").render(v=7) == "[77]\n"
    assert sorted(calls) == ["_m.j2", "a.j2"]


def test_a_wheel_ships_every_template_compiled():
    """An installed (non-editable) torsh-jit has a module for each template, for this Jinja."""
    pkg = Path(jinja_env.__file__).resolve().parents[1]
    if not (pkg / "_templates").is_dir():
        pytest.skip("a source checkout or editable install: nothing is shipped")
    index = jinja_env._shipped_index(str(pkg / jinja_shipped.PACKAGE))
    assert index is not None, "the wheel's compiled templates are missing or of another Jinja"
    assert len(index) == len(list((pkg / "_templates").rglob("*.j2")))
