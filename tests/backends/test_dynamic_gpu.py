"""Symbolic sizes on the C-style GPU backends: one compile serves every batch size.

The symbolic plans (the batch axis a symbol) of WGSL, MSL and CUDA record no guard on the
batch; CUDA's compile to PTX for sm_80 and sm_90 without a GPU; on a GPU each kernel of the
corpus is called with dynamic=True over 32 batch sizes (0, 1, primes, sizes that are not a
multiple of the vector width or of the block) and must build once and match numpy (skipped
elsewhere). WGSL (lavapipe here) and MSL (the host harness) run the dynamic corpus in
tests/targets/test_dynamic_targets.py, which fails in CI where they cannot run.
"""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.backends import cuda as cuda_backend
from torsh_jit.compiler import plan
from torsh_jit.ir.symbols import ShapeEnv
from torsh_jit.ir.tracer import trace
from torsh_jit.runtime.dynamic import symbolic_specs

SIZES = [0, 1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 31, 37, 41, 63, 64, 65, 97, 127, 128, 129,
         131, 255, 256, 257, 300, 383, 509, 512, 513, 1000, 1031]


def _softmax(x):
    e = tj.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layernorm(x, w, b):
    d = x - x.mean(axis=-1, keepdims=True)
    return d / tj.sqrt((d * d).mean(axis=-1, keepdims=True) + 1e-5) * w + b


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_layernorm(x, w, b):
    d = x - x.mean(-1, keepdims=True)
    return d / np.sqrt((d * d).mean(-1, keepdims=True) + 1e-5) * w + b


# name: (function, arguments for batch n, numpy's answer)
CORPUS = {
    "chain": (lambda x, y: tj.exp(x) * y + 1,
              lambda r, n: [r.standard_normal((n, 19)), r.standard_normal((n, 19))],
              lambda x, y: np.exp(x) * y + 1),
    "softmax": (_softmax, lambda r, n: [r.standard_normal((n, 64))], _np_softmax),
    "layernorm": (_layernorm,
                  lambda r, n: [r.standard_normal((n, 64)), r.standard_normal(64), r.standard_normal(64)],
                  _np_layernorm),
    "matmul": (lambda x, w, b: tj.maximum(x @ w + b, 0),
               lambda r, n: [r.standard_normal((n, 32)), r.standard_normal((32, 48)), r.standard_normal(48)],
               lambda x, w, b: np.maximum(x @ w + b, 0)),
    "colsum": (lambda x: x.sum(axis=0), lambda r, n: [r.standard_normal((n, 40))],
               lambda x: x.sum(axis=0)),
}


def _args(name, rng, n):
    return [a.astype(np.float32) for a in CORPUS[name][1](rng, n)]


def _check(name, got, args, n):
    want = CORPUS[name][2](*[a.astype(np.float64) for a in args])
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2e-5, atol=2e-5 * (1 + n ** 0.5),
                               err_msg=f"{name} at batch {n}")


def _symbolic_plan(name, target, n=37):
    """The plan of a corpus kernel with its batch axis the symbol n (traced at batch n)."""
    fn = CORPUS[name][0]
    args = _args(name, np.random.default_rng(n), n)
    specs = symbolic_specs(tj.kernel(fn, target=target).specs_of(args), {0: "n"})
    with ShapeEnv().active():
        g, _ = trace(fn, specs)
        return plan(g, specs, tj.parse_target(target))


def _run_over_sizes(name, target, rng):
    """Call one dynamic=True kernel over SIZES; return how many specialisations it built."""
    k = tj.kernel(CORPUS[name][0], dynamic=True, target=target)
    for n in SIZES:
        args = _args(name, rng, n)
        _check(name, k(*args), args, n)
    return k.compiles


@pytest.mark.parametrize("target", ["wgsl", "metal", "cuda-sm80", "cuda-sm90"])
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_symbolic_plans_guard_nothing_about_the_batch(name, target):
    p = _symbolic_plan(name, target)
    assert p.symbols == ("n",)
    # only the 32-bit index bound (int offsets below 2^31; past it a 64-bit variant compiles)
    assert [g for g in p.guards if "n" in repr(g) and not
            (g.op == "<" and g.rhs == 2**31 - 1)] == [], p.guards
    assert p.units and all(p.units)          # the launcher's grids, one per kernel


@pytest.mark.parametrize("target", ["cuda-sm80", "cuda-sm90"])
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_symbolic_plans_compile_to_ptx(name, target):
    from torsh_jit.backends.cuda import toolchain
    if toolchain.nvrtc_route() is None:
        pytest.fail("NVRTC is missing: pip install cuda-python nvidia-cuda-nvrtc (the test extra)")
    p = _symbolic_plan(name, target)
    ptx, log = cuda_backend.compile_ptx(p.source, p.target, cuda_backend.module_options(p))
    assert log == "", f"{name} on {target}: NVRTC says\n{log}"
    for k in p.kernel_names():
        assert f".entry {k}(" in ptx.decode()
    assert "sz_n" in p.source                 # the batch is read at run time, not written in


def test_size_expressions_are_spelled_with_floor_semantics(tmp_path):
    # (n - 1) // 4 and (n - 1) % 4 are negative-capable (n = 0); a C compiler evaluates them
    import shutil
    import subprocess
    from torsh_jit.codegen.cstyle.sizes import SizeTable
    from torsh_jit.codegen.cuda import LANG
    from torsh_jit.ir.symbols import Sym
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    n = Sym.symbol("n", 5)
    t = SizeTable(LANG, ("n",), 3)
    exprs = [(n - 1) // 4, (n - 1) % 4, -((-n) // 4), (3 * n - 7) // 5 + n % 3]
    vals = [0, 1, 2, 3, 4, 5, 9, 1031]
    body = "".join(f"{{ long long sz_n = {v}; printf(\"%lld\\n\", (long long){t.spell(e)}); }}\n"
                   for v in vals for e in exprs)
    src = tmp_path / "sizes.c"
    src.write_text("#include <stdio.h>\nint main(void) {\n" + body + "return 0; }\n")
    exe = tmp_path / "sizes"
    subprocess.run(["clang", "-o", str(exe), str(src)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True).stdout.split()]
    assert got == [e.subs({"n": v}) for v in vals for e in exprs]


@pytest.mark.skipif(not cuda_backend.gpu_available(),
                    reason="no CUDA GPU here (cupy is missing or sees no device)")
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_cuda_one_compile_serves_every_batch_size(name, rng):
    assert _run_over_sizes(name, "cuda", rng) == 1


@pytest.mark.skipif(not cuda_backend.gpu_available(),
                    reason="no CUDA GPU here (cupy is missing or sees no device)")
def test_cuda_device_arrays_bind_without_compiling(rng):
    """Device arrays in (cupy, torch CUDA tensors), device arrays out: a new batch size binds
    the symbolic variant from the arrays' shapes, compiling nothing."""
    import cupy as cp
    k = tj.kernel(_softmax, dynamic=True, target="cuda")
    for n in (3, 17, 1, 256, 1000, 0, 77):
        x = rng.standard_normal((n, 300)).astype(np.float32)
        got = k(cp.asarray(x))
        assert isinstance(got, cp.ndarray)
        e = np.exp(x - x.max(axis=-1, keepdims=True)) if n else x
        np.testing.assert_allclose(cp.asnumpy(got), e / e.sum(axis=-1, keepdims=True),
                                   rtol=1e-5, atol=1e-7)
    assert k.compiles == 1, k.compiles
    try:
        import torch
    except ImportError:
        return
    for n in (5, 64):
        t = torch.randn(n, 300, device="cuda")
        np.testing.assert_allclose(k(t).cpu().numpy(), torch.softmax(t, -1).cpu().numpy(),
                                   rtol=1e-5, atol=1e-7)
    assert k.compiles == 1, k.compiles


def test_tensor_core_gemm_keeps_divisibility_guards_symbolic():
    """A bf16 GEMM for sm_90a with every dimension a symbol: the TMA path's alignment asks
    `s0 % 8 == 0`, a guard that narrows the sizes without fixing one (it is kept, not
    substituted, and planning does not fail); the plan compiles to PTX."""
    from torsh_jit.backends.cuda import toolchain
    from torsh_jit.ir.tracer import ArgSpec
    if toolchain.nvrtc_route() is None:
        pytest.fail("NVRTC is missing: pip install cuda-python nvidia-cuda-nvrtc (the test extra)")
    a = ArgSpec("array", (4096, 4096), "bfloat16")
    p = tj.kernel(lambda x, y: x @ y, dynamic=True).lower(a, a, target="cuda-sm90a").plan
    assert p.symbols == ("s0",)
    assert any(g.op == "==" and "%" in repr(g.lhs) for g in p.guards), p.guards
    ptx, log = cuda_backend.compile_ptx(p.source, p.target, cuda_backend.module_options(p))
    assert log == "" and all(f".entry {k}(" in ptx.decode() for k in p.kernel_names())


@pytest.mark.parametrize("target", ["cuda-sm80", "cuda-sm90a"])
def test_symbolic_row_length_renders_the_configs_vector_groups(target):
    """dynamic=True softmax: the schedule reads rows in groups of 4 and keeps them in
    registers under the guards `s1 % 4 == 0` and `s1 <= cached length`; the kernel rendered
    from it must read groups of 4 too (one element a group covered a quarter of each row)."""
    k = tj.kernel(_softmax, dynamic=True, target=target)
    low = k.lower(np.zeros((3, 1024), np.float32))
    cfg = low.configs[0]
    guards = [repr(g) for g in low.plan.guards]
    assert cfg.vec == 4 and cfg.cache, cfg
    assert "((s1)%4) == 0" in guards and any(g.startswith("s1 <= ") for g in guards), guards
    assert "for (int v = 0; v < 4; ++v)" in low.source


@pytest.mark.skipif(not cuda_backend.gpu_available(),
                    reason="no CUDA GPU here (cupy is missing or sees no device)")
@pytest.mark.parametrize("name", ["softmax", "layernorm"])
def test_cuda_symbolic_row_lengths_cross_the_schedule_guards(name, rng):
    """dynamic=True over the row length, on either side of the guards above (a multiple of
    4 or not, within the cached length or past it): every row whole, a few variants."""
    k = tj.kernel(CORPUS[name][0], dynamic=True, target="cuda")
    for K in (1024, 1000, 4096, 4100, 1, 7, 256, 2048, 64, 3):
        args = [rng.standard_normal((3, K)).astype(np.float32)]
        if name == "layernorm":
            args += [rng.standard_normal(K).astype(np.float32) for _ in range(2)]
        want = CORPUS[name][2](*[a.astype(np.float64) for a in args])
        np.testing.assert_allclose(np.asarray(k(*args), np.float64), want, rtol=2e-5,
                                   atol=2e-5 * (1 + K ** 0.5), err_msg=f"{name} at row length {K}")
    assert k.compiles <= 6, k.compiles   # (the regimes: a multiple of 4 or not, within each cached length or past it)
