"""Ahead-of-time bundles: the object links into a C program that computes the right numbers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

KERNEL = '''
import numpy as np

def fused(x, w, b):
    h = np.maximum(x @ w + b, 0.0)
    return h, np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1)
'''

C_MAIN = r'''
#include <stdio.h>
#include "fused.h"
static float x[%(n)d], w[%(ww)d], b[%(m)d], o0[%(o0)d], o1[%(o1)d];
int main(void) {
    FILE *f = fopen("in.bin", "rb");
    if (fread(x, sizeof x, 1, f) != 1 || fread(w, sizeof w, 1, f) != 1 || fread(b, sizeof b, 1, f) != 1) return 3;
    fclose(f);
    if (fused(x, w, b, o0, o1) != 0) return 4;
    f = fopen("out.bin", "wb");
    fwrite(o0, sizeof o0, 1, f); fwrite(o1, sizeof o1, 1, f);
    fclose(f);
    return 0;
}
'''


@pytest.mark.parametrize("cc,main", [("gcc", "main.c"), ("g++", "main.cpp")])
def test_compile_bundle_links_and_runs(cc, main, tmp_path, rng):
    """From C and from C++ (the header declares the kernel extern "C")."""
    if shutil.which(cc) is None:
        pytest.skip(f"needs {cc} to link the object")
    (tmp_path / "k.py").write_text(KERNEL)
    env = dict(os.environ)           # the installed torsh_jit, as a user's shell has it
    r = subprocess.run([sys.executable, "-m", "torsh_jit", "compile", f"{tmp_path}/k.py:fused",
                        "--arg", "f32[13,37]", "--arg", "f32[37,29]", "--arg", "f32[29]",
                        "--target", "host", "-o", str(tmp_path / "out")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = manifest["entries"][0]
    assert entry["arguments"][0]["shape"] == [13, 37]
    assert entry["outputs"] == [{"dtype": "float32", "shape": [13, 29]}, {"dtype": "float32", "shape": [13]}]
    d = tmp_path / "out" / entry["target"]
    (d / main).write_text(C_MAIN % dict(n=13 * 37, ww=37 * 29, m=29, o0=13 * 29, o1=13))
    subprocess.run([cc, "-O1", "-o", "prog", main, "fused.o", "-lm"], cwd=d, check=True)
    x = rng.standard_normal((13, 37)).astype(np.float32)
    w = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal(29).astype(np.float32)
    (d / "in.bin").write_bytes(x.tobytes() + w.tobytes() + b.tobytes())
    subprocess.run(["./prog"], cwd=d, check=True, timeout=60)
    raw = np.frombuffer((d / "out.bin").read_bytes(), np.float32)
    o0, o1 = raw[:13 * 29].reshape(13, 29), raw[13 * 29:]
    np.testing.assert_allclose(o0, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(o1, np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1), rtol=1e-5)


def test_arg_spec_parsing():
    from torsh_jit.aot import parse_arg
    from torsh_jit.errors import ArgumentError
    s = parse_arg("f32[4096,1024]")
    assert (s.kind, s.shape, s.dtype) == ("array", (4096, 1024), "float32")
    assert parse_arg("i64").kind == "scalar"
    with pytest.raises(ArgumentError, match="dtype"):
        parse_arg("complex[3]")


# -- a bundle is whole or absent; wasm32's .wasm is always in it -----------------------------
GELU = str(ROOT / "examples" / "gelu.py") + ":gelu_mul"
ARGS = ["--arg", "f32[10]", "--arg", "f32[10]"]
_HAS_WASM_LD = shutil.which("wasm-ld") is not None and os.path.exists("/usr/lib/wasm32-wasi/libc.a")


def _compile(out, targets: str):
    from torsh_jit.cli import main
    return main(["compile", GELU, *ARGS, "--target", targets, "-o", str(out)])


def test_a_failing_target_leaves_no_bundle_behind(tmp_path, capsys):
    """host builds, then cuda-sm80 cannot be bundled: no directory, no host files, no temp."""
    assert _compile(tmp_path / "out", "host,cuda-sm80") == 2
    assert "cuda-sm80" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_target_failing_mid_build_leaves_an_existing_directory_as_it_was(tmp_path, monkeypatch, capsys):
    """wasm-ld missing: the host part built first is not written either, and the error says
    what to install."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))          # no wasm-ld (nor anything else)
    assert _compile(out / "bundle", "host,wasm32-simd128") == 2
    err = capsys.readouterr().err
    assert "wasm-ld" in err and "apt-get install lld" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "out"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_wasm_bundle_links_the_module_without_wasmtime(tmp_path, monkeypatch):
    """wasmtime runs modules; linking one needs only wasm-ld and wasi-libc."""
    if not _HAS_WASM_LD:
        why = "needs wasm-ld (apt-get install lld) and wasi-libc"
        if os.environ.get("TORSH_JIT_REQUIRE_RUNNERS") == "1":   # CI installs both
            pytest.fail(why)
        pytest.skip(why)
    monkeypatch.setitem(sys.modules, "wasmtime", None)      # looks uninstalled
    assert _compile(tmp_path / "out", "wasm32-simd128") == 0
    entry = json.loads((tmp_path / "out" / "manifest.json").read_text())["entries"][0]
    assert entry["files"]["wasm"] == "wasm32-simd128/gelu_mul.wasm"
    assert (tmp_path / "out" / entry["files"]["wasm"]).read_bytes()[:4] == b"\0asm"


def test_compiling_again_replaces_the_bundle_and_keeps_other_files(tmp_path):
    out = tmp_path / "out"
    assert _compile(out, "host,x86_64-sse42") == 0
    (out / "notes.txt").write_text("mine")
    (out / "x86_64-sse42" / "stale.o").write_bytes(b"old")
    assert _compile(out, "x86_64-sse42") == 0
    m = json.loads((out / "manifest.json").read_text())
    assert [e["target"] for e in m["entries"]] == ["x86_64-sse42"]
    assert not (out / "x86_64-sse42" / "stale.o").exists()
    assert (out / "x86_64-sse42" / "gelu_mul.o").exists() and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- symbolic sizes: one object, any size ------------------------------------------------------
SYM_KERNEL = '''
import numpy as np

def fused(x, w, b):
    h = np.maximum(x @ w + b, 0.0)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return h, h.sum(axis=0), e / e.sum(axis=-1, keepdims=True)

def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

def colsum(x):
    return x.sum(axis=0) * 2.0

def axpy(x, y):
    return x * 2 + y

def colmean(x):
    return x.sum(axis=0) / x.shape[0]
'''


def _reference(fn, *args):
    ns: dict = {}
    exec(SYM_KERNEL, ns)
    out = ns[fn](*args)
    return out if isinstance(out, tuple) else (out,)


def _c_main(name: str, n_in: int, n_out: int, n_sym: int) -> str:
    """A C program for a bundle of float32 arrays: `prog SIZES... COUNTS...` reads the
    inputs from in.bin, calls the function, prints its return code, writes out.bin."""
    n = n_in + n_out
    call = ", ".join([f"buf[{i}]" for i in range(n)] + [f"s[{i}]" for i in range(n_sym)])
    return f'''
#include <stdio.h>
#include <stdlib.h>
#include "{name}.h"
int main(int argc, char **argv) {{
    int64_t s[{max(n_sym, 1)}]; long cnt[{n}]; float *buf[{n}];
    if (argc != 1 + {n_sym} + {n}) return 2;
    for (int i = 0; i < {n_sym}; i++) s[i] = atoll(argv[1 + i]);
    for (int i = 0; i < {n}; i++) {{ cnt[i] = atol(argv[1 + {n_sym} + i]); buf[i] = malloc(cnt[i] * 4 + 4); }}
    FILE *f = fopen("in.bin", "rb");
    for (int i = 0; i < {n_in}; i++) if (fread(buf[i], 4, cnt[i], f) != (size_t)cnt[i]) return 3;
    fclose(f);
    int rc = {name}({call});
    printf("%d\\n", rc);
    f = fopen("out.bin", "wb");
    for (int i = {n_in}; rc == 0 && i < {n}; i++) fwrite(buf[i], 4, cnt[i], f);
    fclose(f);
    return 0;
}}
'''


def _link(d: Path, name: str, n_in: int, n_out: int, n_sym: int, cc: str = "gcc", flags=()):
    if shutil.which(cc) is None:
        pytest.skip(f"needs {cc} to link the object")
    (d / "main.c").write_text(_c_main(name, n_in, n_out, n_sym))
    subprocess.run([cc, "-O1", "-Wall", "-Werror", *flags, "-o", "prog", "main.c", f"{name}.o", "-lm"],
                   cwd=d, check=True)


def _run(d: Path, sizes, inputs, out_shapes, runner=()):
    """Call the linked program at these sizes; (return code, outputs)."""
    (d / "in.bin").write_bytes(b"".join(np.ascontiguousarray(a, np.float32).tobytes() for a in inputs))
    counts = [a.size for a in inputs] + [int(np.prod(s)) for s in out_shapes]
    r = subprocess.run([*runner, "./prog", *map(str, sizes), *map(str, counts)], cwd=d,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rc = int(r.stdout.split()[0])
    if rc != 0:
        return rc, None
    raw = np.frombuffer((d / "out.bin").read_bytes(), np.float32)
    outs, at = [], 0
    for s in out_shapes:
        k = int(np.prod(s))
        outs.append(raw[at:at + k].reshape(s))
        at += k
    return rc, outs


def _bundle(tmp_path, fn: str, args, target="host"):
    from torsh_jit.aot import compile_bundle, parse_args
    ns: dict = {}
    exec(SYM_KERNEL, ns)
    out = tmp_path / "out"
    m = compile_bundle(ns[fn], parse_args(args), [target], out, progress=lambda *a: None)
    entry = m["entries"][0]
    return entry, out / entry["target"]


def _check(rc, outs, ref):
    assert rc == 0
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4)


def test_symbolic_bundle_serves_two_sizes_from_one_object(tmp_path, rng):
    """x is f32[n,37]: matmul, a column sum over n (temporaries of n rows) and a row softmax,
    one object called at n=3 and n=1000 (and 0), each against numpy on fresh data."""
    entry, d = _bundle(tmp_path, "fused", ["f32[n,37]", "f32[37,29]", "f32[29]"])
    assert entry["arguments"][0]["shape"] == ["n", 37]
    assert [o["shape"] for o in entry["outputs"]] == [["n", 29], [29], ["n", 37]]
    assert entry["symbols"] == [{"name": "n", "hint": 64, "dims": [{"argument": "x", "axis": 0}]}]
    assert entry["size_table"]["index"] == entry["buffers"] - 1
    assert "int64_t n)" in (d / "fused.h").read_text()
    _link(d, "fused", 3, 3, 1)
    w = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal(29).astype(np.float32)
    for n in (3, 1000, 0):
        x = rng.standard_normal((n, 37)).astype(np.float32)
        ref = _reference("fused", x, w, b)
        _check(*_run(d, [n], [x, w, b], [r.shape for r in ref]), ref)
    x = rng.standard_normal((5, 37)).astype(np.float32)
    assert _run(d, [-1], [x, w, b], [(5, 29), (29,), (5, 37)])[0] == -2      # a negative size


def test_symbolic_bundle_checks_its_guards_per_call(tmp_path, rng):
    """A row softmax over f32[n,m] assumes a row is not empty (the max of an empty row has
    no value): the C function returns -3 at m = 0 and computes right at every other size,
    rows longer than a block included; two symbols, in the order named."""
    entry, d = _bundle(tmp_path, "softmax", ["f32[n,m]"])
    assert [s["name"] for s in entry["symbols"]] == ["n", "m"]
    assert entry["guards"] == ["m != 0"]
    _link(d, "softmax", 1, 1, 2)
    for n, m in ((7, 100), (130, 37), (2, 4096), (3, 5000), (0, 9)):
        x = rng.standard_normal((n, m)).astype(np.float32)
        ref = _reference("softmax", x)
        _check(*_run(d, [n, m], [x], [x.shape]), ref)
    x = rng.standard_normal((2, 0)).astype(np.float32)
    assert _run(d, [2, 0], [x], [x.shape])[0] == -3


_FLOOR_C = """
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
%s
int main(void) {
    for (int64_t n = -40; n <= 40; n++)
        printf("%%lld %%lld\\n", (long long)(%s), (long long)(%s));
    return 0;
}
"""


def test_sizes_with_floor_division_are_spelt_in_c_as_python_computes_them(tmp_path):
    """Floor division and remainder atoms of a size (a ceiling `-(-n // 16)`, `n % 3`) in C,
    for negative intermediate values too, against Python's own arithmetic."""
    from torsh_jit.aot.sizes import HELPERS, c_size
    from torsh_jit.ir.symbols import Sym
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    n = Sym.symbol("n", 5)
    a, b = -(-(3 * n - 7) // 16) * 16, (n * n + 2) % 3 - n // 4
    (tmp_path / "f.c").write_text(_FLOOR_C % (HELPERS, c_size(a), c_size(b)))
    subprocess.run(["gcc", "-O1", "-Wall", "-Werror", "-o", "f", "f.c"], cwd=tmp_path, check=True)
    out = subprocess.run(["./f"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    got = [tuple(map(int, line.split())) for line in out.splitlines()]
    want = [(a.subs({"n": v}), b.subs({"n": v})) for v in range(-40, 41)]
    want_py = [(-(-(3 * v - 7) // 16) * 16, (v * v + 2) % 3 - v // 4) for v in range(-40, 41)]
    assert want == want_py and got == want


def test_a_guard_that_pins_a_size_is_refused_naming_the_argument(tmp_path, capsys):
    """A column mean written as x.sum(axis=0) / x.shape[0] divides by n as a Python number,
    so its code holds only for n = 64, the tracing size: the compile says which guard and which argument axis,
    suggests another tracing size, writes nothing."""
    from torsh_jit.cli import main
    (tmp_path / "k.py").write_text(SYM_KERNEL)
    assert main(["compile", f"{tmp_path}/k.py:colmean", "--arg", "f32[n,256]", "-o",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "n == 64" in err, err
    assert "x axis 0" in err and "f32[n=4096,256]" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_symbolic_specs_share_names_and_take_hints():
    from torsh_jit.aot import parse_args
    from torsh_jit.errors import ArgumentError
    from torsh_jit.ir.symbols import Sym
    x, y, z = parse_args(["f32[batch, seq, 64]", "f32[seq=300,64]", "i64[7]"])
    assert [type(d) for d in x.shape] == [Sym, Sym, int] and x.shape[2] == 64
    assert repr(x.shape[1]) == repr(y.shape[0]) == "seq"
    assert (x.shape[0].hint, x.shape[1].hint, y.shape[0].hint) == (64, 300, 300)
    assert z.shape == (7,)
    with pytest.raises(ArgumentError, match="two tracing sizes"):
        parse_args(["f32[n=3]", "f32[n=4]"])
    for bad, what in (("f32[n m]", "neither"), ("f32[int]", "C keyword"), ("f32[tj_x]", "header"),
                      ("f32[2n]", "neither")):
        with pytest.raises(ArgumentError, match=what):
            parse_args([bad])


def test_a_size_named_like_a_parameter_is_refused(tmp_path):
    from torsh_jit.errors import ArgumentError
    with pytest.raises(ArgumentError, match="another parameter"):
        _bundle(tmp_path, "axpy", ["f32[y,4]", "f32[4]"])


EXACT_HEADER = """\
/* generated by torsh-jit: f */
#ifndef F_H
#define F_H
#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif
void tj_m_main(void **buffers);
#ifdef __cplusplus
}
#endif

/* arguments: x: float32[13,37]; w: float32[37,29] */
/* outputs: out0: float32[29]; out1: float32[13] */
/* returns 0, or -1 when a temporary buffer cannot be allocated */
static inline int f(const float *x, const float *w, float *out0, float *out1) {
    void *tj_buffers_[6];
    tj_buffers_[0] = (void *)x;
    tj_buffers_[1] = (void *)w;
    tj_buffers_[2] = (void *)out0;
    tj_buffers_[3] = (void *)out1;
    tj_buffers_[4] = malloc(1508);
    if (!tj_buffers_[4]) { return -1; }
    tj_buffers_[5] = malloc(1508);
    if (!tj_buffers_[5]) { free(tj_buffers_[4]); return -1; }
    tj_m_main(tj_buffers_);
    free(tj_buffers_[4]);
    free(tj_buffers_[5]);
    return 0;
}

#endif /* F_H */
"""


def test_exact_shape_headers_and_manifests_are_as_before(tmp_path):
    """Symbolic sizes add to the header and manifest only where a size is symbolic: an exact
    bundle's header is the text it always was (temporaries' sizes constant), and its
    manifest has no symbol fields."""
    from torsh_jit.aot.header import header
    from torsh_jit.ir.tracer import ArgSpec
    specs = (ArgSpec("array", (13, 37), "float32"), ArgSpec("array", (37, 29), "float32"))
    text = header("f", "tj_m", specs, ["x", "w"], [((29,), "float32"), ((13,), "float32")],
                  [((13, 29), "float32"), ((13, 29), "float32")])
    assert text == EXACT_HEADER
    entry, _ = _bundle(tmp_path, "axpy", ["f32[5,4]", "f32[4]"])
    assert not {"symbols", "guards", "size_table"} & set(entry)
    assert entry["outputs"] == [{"dtype": "float32", "shape": [5, 4]}] and entry["buffers"] == 3


def test_symbolic_bundle_for_aarch64_runs_under_qemu(tmp_path, rng):
    """The same symbolic bundle for an emulated ISA: cross-linked, run at two sizes."""
    import torsh_jit as tj
    t = tj.parse_target("aarch64-neon")
    if shutil.which(t.cc) is None or shutil.which(t.runner) is None:
        pytest.skip(f"needs {t.cc} and {t.runner}")
    from torsh_jit.backends.runners.qemu import emulator_command
    entry, d = _bundle(tmp_path, "axpy", ["f32[n,1024]", "f32[1024]"], target="aarch64-neon")
    assert entry["symbols"][0]["name"] == "n" and entry["guards"] == []
    _link(d, "axpy", 2, 1, 1, cc=t.cc, flags=["-static"])
    y = rng.standard_normal(1024).astype(np.float32)
    for n in (3, 257):
        x = rng.standard_normal((n, 1024)).astype(np.float32)
        _check(*_run(d, [n], [x, y], [x.shape], runner=emulator_command(t)), [x * 2 + y])


def test_symbolic_wasm_bundle_links_its_module(tmp_path):
    if not _HAS_WASM_LD:
        pytest.skip("needs wasm-ld (apt-get install lld) and wasi-libc")
    entry, d = _bundle(tmp_path, "softmax", ["f32[n,64]"], target="wasm32-simd128")
    assert entry["symbols"][0]["name"] == "n"
    assert (d / "softmax.wasm").read_bytes()[:4] == b"\0asm"
