"""Ahead-of-time bundles for other ISAs: the aarch64 and riscv64 objects link with a C
program by the cross gcc and compute the right numbers under qemu-user; the wasm32
module runs in wasmtime with nothing imported."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.aot import compile_bundle
from torsh_jit.ir.tracer import ArgSpec

from target_configs import require_target


def fused(x, w, b):
    h = np.maximum(x @ w + b, 0.0)
    return h, np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1)


SPECS = (ArgSpec("array", (13, 37), "float32"), ArgSpec("array", (37, 29), "float32"),
         ArgSpec("array", (29,), "float32"))

C_MAIN = r'''
#include <stdio.h>
#include "fused.h"
static float x[13 * 37], w[37 * 29], b[29], o0[13 * 29], o1[13];
int main(void) {
    FILE *f = fopen("in.bin", "rb");
    if (!f || fread(x, sizeof x, 1, f) != 1 || fread(w, sizeof w, 1, f) != 1 || fread(b, sizeof b, 1, f) != 1) return 3;
    fclose(f);
    if (fused(x, w, b, o0, o1) != 0) return 4;
    f = fopen("out.bin", "wb");
    fwrite(o0, sizeof o0, 1, f); fwrite(o1, sizeof o1, 1, f);
    fclose(f);
    return 0;
}
'''


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    manifest = compile_bundle(fused, SPECS, ["aarch64-neon", "riscv64-rvv", "wasm32-simd128"], out,
                              progress=lambda *a: None)
    return out, {e["target"]: e for e in manifest["entries"]}


def data(rng):
    x = rng.standard_normal((13, 37)).astype(np.float32)
    w = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal(29).astype(np.float32)
    return x, w, b


def check(o0, o1, x, w, b):
    np.testing.assert_allclose(o0, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(o1, np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1), rtol=1e-5)


@pytest.mark.parametrize("target", ["aarch64-neon", "riscv64-rvv"])
def test_object_links_with_cross_gcc_and_runs_under_qemu(bundle, target, rng):
    require_target(target)
    from torsh_jit.backends.runners.qemu import emulator_command
    out, entries = bundle
    entry = entries[target]
    t = tj.parse_target(target)
    d = out / target
    assert sorted(entry["files"]) == ["header", "llvm_ir", "object"]
    (d / "main.c").write_text(C_MAIN)
    subprocess.run([t.cc, "-O1", "-static", "-o", "prog", "main.c", "fused.o", "-lm"], cwd=d, check=True)
    x, w, b = data(rng)
    (d / "in.bin").write_bytes(x.tobytes() + w.tobytes() + b.tobytes())
    subprocess.run(emulator_command(t) + ["./prog"], cwd=d, check=True, timeout=120)
    raw = np.frombuffer((d / "out.bin").read_bytes(), np.float32)
    check(raw[:13 * 29].reshape(13, 29), raw[13 * 29:], x, w, b)


def test_wasm_module_runs_in_wasmtime(bundle, rng):
    require_target("wasm32-simd128")
    import wasmtime
    out, entries = bundle
    entry = entries["wasm32-simd128"]
    assert entry["pointer_bits"] == 32
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, (out / entry["files"]["wasm"]).read_bytes())
    assert list(module.imports) == [], "the bundle's module must be self-contained"
    store = wasmtime.Store(engine)
    ex = wasmtime.Instance(store, module, []).exports(store)
    x, w, b = data(rng)
    arrays = [x, w, b] + [np.zeros(o["shape"], o["dtype"]) for o in entry["outputs"]] + \
        [np.zeros(t["shape"], t["dtype"]) for t in entry["temporaries"]]
    ptrs = [ex["malloc"](store, max(a.nbytes, 1)) for a in arrays]
    table = ex["malloc"](store, 4 * len(arrays))

    def mem():
        m = ex["memory"]
        return np.ctypeslib.as_array(m.data_ptr(store), shape=(m.data_len(store),))
    for p, a in zip(ptrs[:3], arrays[:3]):
        mem()[p:p + a.nbytes] = a.view(np.uint8).ravel()
    mem()[table:table + 4 * len(ptrs)] = np.asarray(ptrs, "<u4").view(np.uint8)
    ex[entry["symbol"]](store, table)
    o0 = mem()[ptrs[3]:ptrs[3] + 13 * 29 * 4].view(np.float32).reshape(13, 29)
    o1 = mem()[ptrs[4]:ptrs[4] + 13 * 4].view(np.float32)
    check(o0, o1, x, w, b)
