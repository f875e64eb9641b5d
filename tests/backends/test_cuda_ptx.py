"""The CUDA C of the whole op corpus compiles to PTX with NVRTC, without errors or warnings.

Needs no GPU: NVRTC comes from the `cuda-python` and `nvidia-cuda-nvrtc` wheels (the `test`
extra). When they are missing these tests fail rather than skip, so CI never passes without
checking the code it generates.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import torsh_jit as tj
from torsh_jit.backends import cuda as backend
from torsh_jit.backends.cuda import toolchain

from gpu_corpus import ALL_CASES

TARGETS = ("cuda-sm80", "cuda-sm90", "cuda-sm90a")


@pytest.fixture(scope="module", autouse=True)
def nvrtc():
    if toolchain.nvrtc_route() is None:
        pytest.fail("NVRTC is missing: pip install cuda-python nvidia-cuda-nvrtc (the test extra); "
                    "the CUDA backend's code is checked by compiling it")


_lowered: dict = {}


def lowered(case, target):
    key = (case.name, target)
    if key not in _lowered:
        args = case.make(np.random.default_rng(7))
        _lowered[key] = tj.kernel(case.fn(tj)).lower(*args, target=target)
    return _lowered[key]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_corpus_compiles_to_ptx(case, target):
    low = lowered(case, target)
    ptx, log = backend.compile_ptx(low.source, low.target, backend.module_options(low.plan))
    assert log == "", f"{case.name} on {target}: NVRTC says\n{log}"
    arch = low.target.arch.split("_")[1]
    assert f".target sm_{arch}" in ptx.decode()
    for name in low.plan.kernel_names():
        assert f".entry {name}(" in ptx.decode()


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.name.startswith(("unary", "binary", "views", "half-elementwise"))],
                         ids=lambda c: c.name)
def test_unaligned_variant_compiles_to_ptx(case):
    # the module elementwise kernels fall back to for pointers not 16-byte aligned
    from torsh_jit.codegen.cuda import render_plan
    low = lowered(case, "cuda-sm90")
    src, launches = render_plan(low.plan, aligned=False)
    assert not any(l.align for l in launches if l.kind == "elementwise")
    ptx, log = backend.compile_ptx(src, low.target)
    assert log == "", f"{case.name}: NVRTC says\n{log}"


def _ptx(fn, *args, target="cuda-sm90"):
    low = tj.kernel(fn).lower(*args, target=target)
    ptx, log = backend.compile_ptx(low.source, low.target, backend.module_options(low.plan))
    assert log == ""
    return low, ptx.decode()


def test_elementwise_uses_16_byte_accesses():
    def chain(a, b, c):
        return tj.exp(a) * b + tj.sin(c) * 0.5 - tj.tanh(a * c)
    x = np.ones(1 << 16, np.float32)
    _, ptx = _ptx(chain, x, x, x)
    assert re.search(r"ld\.global\.nc\.v4\.(f32|u32|b32)", ptx), "no 16-byte loads"
    assert re.search(r"st\.global\.v4\.(f32|u32|b32)", ptx), "no 16-byte stores"
    h = np.ones(1 << 16, np.float16)
    _, ptx = _ptx(lambda a, b: a * b + 1, h, h)
    assert re.search(r"ld\.global\.nc\.v4\.(u32|b32)", ptx)


def test_rows_reduce_with_warp_shuffles():
    x = np.ones((512, 1024), np.float32)
    low, ptx = _ptx(lambda x: tj.exp(x - x.max(axis=-1, keepdims=True)) /
                    tj.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True), x)
    assert low.n_kernels == 1
    assert "shfl.sync.bfly" in ptx


def test_half_matmul_uses_tensor_cores_with_the_epilogue_fused():
    a = np.ones((256, 128), np.float16)
    w = np.ones((128, 256), np.float16)
    b = np.ones(256, np.float16)
    low, ptx = _ptx(lambda x, w, b: tj.relu(x @ w + b), a, w, b)
    assert low.n_kernels == 1, "relu(x @ w + b) is one kernel"
    assert "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32" in ptx
    assert "ldmatrix.sync.aligned.m8n8.x4" in ptx and "cp.async.cg.shared.global" in ptx
    assert "max" in low.source or ">= 0" in low.source   # the relu is in the kernel


def test_source_is_one_cu_file_that_nvcc_compiles_alone(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed (NVRTC checks the same text above)")
    a = np.ones((128, 64), np.float16)
    w = np.ones((64, 128), np.float16)
    low = tj.kernel(lambda x, w: (tj.relu(x @ w), (x * 2).sum(axis=-1))).lower(a, w, target="cuda-sm90")
    f = tmp_path / "k.cu"
    f.write_text(low.source)
    r = subprocess.run([nvcc, "-arch=sm_90", "-c", str(f), "-o", str(tmp_path / "k.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr


def test_lower_needs_no_gpu_and_names_the_arch():
    x = np.ones(100, np.float32)
    low = tj.kernel(lambda x: x * 2).lower(x, target="cuda-sm80")
    assert "sm_80" in low.source.splitlines()[0]
    assert low.target.language == "cuda"
    assert "__global__" in low.source


def test_the_backend_object_answers_what_the_module_does_without_a_gpu():
    from torsh_jit.backends.base import Backend
    from torsh_jit.ir.dtypes import HALF_DTYPES
    be = backend.BACKEND
    assert isinstance(be, Backend) and be.language == "cuda" and be.half_dtypes == HALF_DTYPES
    a = np.ones((128, 64), np.float16)
    w = np.ones((64, 128), np.float16)
    low = tj.kernel(lambda x, w: tj.relu(x @ w)).lower(a, w, target="cuda-sm90")
    p, t = low.plan, low.target
    g, cfg = p.part.groups[0], p.configs[0]
    assert be.render(p) == low.source
    assert be.default_config(g, t) == cfg
    assert be.tune_key(g, cfg, t) == backend.tune_key(cfg) and be.tune_key(g, cfg, t).threads == 0
    assert cfg in be.tune_space(g, t, cfg).configs
    assert be.has_assembly(t) and ".target sm_90" in be.assembly(low.source, t, p)
    assert be.toolchain_versions() == backend.toolchain_versions()
    assert be.spec_of(a).dtype == "float16"
    assert "threads/block" in be.explain(p)
    if not backend.gpu_available():
        assert not be.can_run(t) and not be.tunes_here(t)


def test_explain_shows_launches_without_a_gpu():
    from torsh_jit.explain import explain_plan
    x = np.ones((64, 4096), np.float32)
    low = tj.kernel(lambda x: x / x.sum(axis=-1, keepdims=True)).lower(x, target="cuda-sm90")
    text = explain_plan(low.plan, low.source, show_source=False)
    assert "threads/block" in text and "launch" in text
    assert "registers/thread" in text           # from ptxas, no GPU needed


@pytest.mark.skipif(backend.gpu_available(), reason="this machine has a GPU")
def test_no_gpu_is_a_target_error_that_says_what_works():
    with pytest.raises(tj.TargetError) as e:
        tj.parse_target("cuda")
    assert "cuda-sm80" in str(e.value) and "host" in str(e.value)
    k = tj.kernel(lambda x: x + 1).to("cuda-sm90")
    with pytest.raises(tj.TargetError) as e:
        k(np.ones(4, np.float32))
    assert "GPU" in str(e.value)
    assert "cuda-sm90" not in tj.available_targets()


def test_an_option_this_nvrtc_does_not_know_is_dropped_and_the_compile_retried(monkeypatch):
    # -minimal, -no-cache and -Ofc=min are chosen by NVRTC version; a build that rejects one
    # anyway must still compile (the option is dropped for the process)
    monkeypatch.setattr(toolchain, "_OPTIONAL", toolchain._OPTIONAL + ("-no-such-option",))
    monkeypatch.setattr(toolchain, "_REJECTED", set())
    x = np.ones(1024, np.float32)
    low = tj.kernel(lambda a: a * 2 + 1).lower(x, target="cuda-sm90")
    ptx, log = backend.compile_ptx(low.source, low.target, ("-no-such-option",))
    assert ".entry" in ptx.decode() and toolchain._REJECTED == {"-no-such-option"}


def test_hopper_matmul_is_fed_by_the_tma_and_warp_specialised():
    # bf16 4096-class matmuls on sm_90a: the default schedule is the TMA kernel (bulk tensor
    # copies on mbarriers, setmaxnreg between producer and consumers, wgmma), with the
    # epilogue fused; misaligned pointers keep the CUDA-core fallback in the same module
    import ml_dtypes
    from torsh_jit.codegen.cuda import render_plan
    a = np.ones((512, 320), ml_dtypes.bfloat16)
    w = np.ones((320, 512), ml_dtypes.bfloat16)
    b = np.ones(512, ml_dtypes.bfloat16)
    low = tj.kernel(lambda x, w, b: tj.relu(x @ w + b)).lower(a, w, b, target="cuda-sm90a")
    cfg = low.plan.configs[0]
    assert cfg.tma and cfg.wgmma, cfg
    ptx, log = backend.compile_ptx(low.source, low.target)
    ptx = ptx.decode()
    assert log == "", log
    for instr in ("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes",
                  "mbarrier.try_wait.parity", "setmaxnreg.dec.sync.aligned.u32",
                  "setmaxnreg.inc.sync.aligned.u32", "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16"):
        assert instr in ptx, instr
    _, launches = render_plan(low.plan)
    main = [l for l in launches if not l.standby][0]
    assert len(main.tmaps) == 2 and main.fallback and main.threads == 384
    assert cfg.persistent and main.grid[0] == "persistent"     # sized from the device at launch
    assert "tensor maps" in low.explain()


def test_tma_schedules_the_tuner_may_pick_compile(monkeypatch):
    # every TMA candidate of a 4096 bf16 matmul's tuning space compiles to PTX for sm_90a
    # (the ptxas register check is the GPU run's: tests/backends/test_cuda_gpu.py)
    import ml_dtypes
    from torsh_jit import compiler
    from torsh_jit.backends.cuda import tune_space
    a = np.ones((4096, 4096), ml_dtypes.bfloat16)
    low = tj.kernel(lambda x, w: x @ w).lower(a, a, target="cuda-sm90a")
    g, cfg = low.plan.part.groups[0], low.plan.configs[0]
    space = tune_space(g, low.target, cfg)
    tma = [c for c in space.configs if c.tma]
    assert cfg in tma and len(tma) > 50
    picks = [tma[i] for i in range(0, len(tma), max(1, len(tma) // 6))]
    for c in picks:
        p = compiler.plan(low.plan.graph, low.plan.specs, low.target, configs=(c,))
        ptx, log = backend.compile_ptx(compiler.render(p), low.target)
        assert b"cp.async.bulk.tensor" in ptx, c


@pytest.mark.parametrize("b_layout", ["x @ w", "x @ w.T"])
def test_tma_clusters_of_two_share_b_by_multicast(b_layout):
    # a cluster schedule: two blocks (__cluster_dims__) take tiles stacked along M; each copies
    # half of the shared B tile to both (multicast), and releases slots in both blocks; the
    # grid is whole clusters
    import ml_dtypes
    from torsh_jit import compiler
    from torsh_jit.codegen.cuda import render_plan
    a = np.ones((1000, 640), ml_dtypes.bfloat16)
    w = np.ones((640, 512), ml_dtypes.bfloat16)
    fn, wt = (lambda x, w: x @ w, w) if b_layout == "x @ w" else (lambda x, w: x @ w.T, w.T.copy())
    low = tj.kernel(fn).lower(a, wt, target="cuda-sm90a")
    cfg = low.plan.configs[0].replace(cluster=2)
    p = compiler.plan(low.plan.graph, low.plan.specs, low.target, configs=(cfg,))
    ptx, log = backend.compile_ptx(compiler.render(p), low.target)
    ptx = ptx.decode()
    assert log == "", log
    for instr in (".reqnctapercluster 2, 1, 1", "%cluster_ctarank", "mapa.shared::cluster.u32",
                  "mbarrier.arrive.shared::cluster.b64", "barrier.cluster.wait.acquire.aligned",
                  "complete_tx::bytes.multicast::cluster"):
        assert instr in ptx, instr
    main = [l for l in render_plan(p)[1] if not l.standby][0]
    # 1000 rows: 4 clusters of 2 x 128 rows (the last one's second tile past M), 2 column tiles
    assert main.cluster == 2 and main.grid == ("persistent", 2 * 4 * 2)
    # B along K: each block's box is half the tile's 256 rows
    assert main.tmaps[1][4] == ((64, 64, 1) if b_layout == "x @ w" else (64, 128, 1))
    assert "clusters of 2 blocks" in main.describe()
    with pytest.raises(tj.TorshJitError, match="cluster"):     # half a 64-column box each
        bad = compiler.plan(low.plan.graph, low.plan.specs, low.target,
                            configs=(cfg.replace(tile_n=192),))
        compiler.render(bad)


def test_16_bit_outputs_go_out_through_the_tma():
    # a bf16 matmul written as bf16: by default the TMA stores the tile from shared memory
    # (a third tensor map, over the output); with other loads in the epilogue the default is
    # the epilogue's own stores
    import ml_dtypes
    from torsh_jit import compiler
    from torsh_jit.codegen.cuda import render_plan
    BF = ml_dtypes.bfloat16
    a, w, b = np.ones((640, 320), BF), np.ones((320, 768), BF), np.ones(768, BF)

    def main_launch(fn, *args, **edit):
        low = tj.kernel(fn).lower(*args, target="cuda-sm90a")
        cfg = low.plan.configs[0].replace(**edit)
        p = compiler.plan(low.plan.graph, low.plan.specs, low.target, configs=(cfg,))
        ptx, log = backend.compile_ptx(compiler.render(p), low.target)
        assert log == "", log
        return cfg, [l for l in render_plan(p)[1] if not l.standby][0], ptx.decode()
    cfg, main, ptx = main_launch(lambda x, w: (x @ w).astype(BF), a, w)
    assert cfg.tma_store and cfg.stages == 3, cfg
    assert len(main.tmaps) == 3 and main.tmaps[2][2] == (768, 640, 1)     # N, M, batch
    assert (main.tmaps[2][0], 16) in main.align        # an unaligned output runs the fallback
    for instr in ("cp.async.bulk.tensor.3d.global.shared::cta.bulk_group",
                  "cp.async.bulk.commit_group", "cp.async.bulk.wait_group.read 0",
                  "fence.proxy.async.shared::cta"):
        assert instr in ptx, instr
    cfg, main, ptx = main_launch(lambda x, w, b: tj.relu(x @ w + b).astype(BF), a, w, b)
    assert not cfg.tma_store and len(main.tmaps) == 2
    # float32 goes out in two parts of 64 x 32-column boxes, when a schedule asks for it
    cfg, main, ptx = main_launch(lambda x, w: x @ w, a, w, tma_store=True, stages=3)
    assert len(main.tmaps) == 3 and main.tmaps[2][4:] == ((32, 64, 1), 4), main.tmaps
    assert "st.shared.v2.f32" in ptx and "bulk_group" in ptx
    # two outputs: the epilogue's own stores under any schedule
    cfg, main, ptx = main_launch(lambda x, w: (x @ w, tj.relu(x @ w)), a, w, tma_store=True,
                                 stages=3)
    assert len(main.tmaps) == 2 and "bulk_group" not in ptx


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_casts_to_16_bit_floats_round_in_the_epilogue(dt):
    # (a @ b).astype(bfloat16): the matmul's float32 accumulators rounded to nearest even
    # in the fused epilogue (cvt.rn), a 16-bit output; the GPU run compares with ml_dtypes
    import ml_dtypes
    a = np.ones((256, 256), ml_dtypes.bfloat16)
    want = ml_dtypes.bfloat16 if dt == "bfloat16" else np.float16
    low = tj.kernel(lambda a, b: (a @ b).astype(want) * 2).lower(a, a, target="cuda-sm90a")
    assert low.n_kernels == 1
    assert low.plan.part.buffers.outputs == (((256, 256), dt),)
    ptx, log = backend.compile_ptx(low.source, low.target)
    assert log == ""
    assert f"cvt.rn.{'bf16' if dt == 'bfloat16' else 'f16'}.f32" in ptx.decode()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_prod_carries_a_mantissa_and_an_exponent_through_every_combine(dtype):
    """Issue 14: a float prod accumulates (mantissa, exponent) pairs; every combine (element
    slots, warp shuffles, shared memory, the split path's workspace across blocks) moves both,
    and the row's value is put together once. Row, column and long-row (split) kernels
    compile; tests/backends/test_cuda_gpu.py runs them."""
    from torsh_jit.codegen.cuda import LANG, render_plan
    dt = np.dtype(dtype).name
    mant, expo = LANG.types[dt], LANG.types[LANG.prod_exponent.get(dt, "int32")]
    x = np.ones((6, 4096), dtype)
    low, ptx = _ptx(lambda x, xt: (x.prod(axis=1), xt.prod(axis=0)), x, np.ascontiguousarray(x.T))
    src = low.source
    assert src.count("tj_pm_ldexp(a") == 2                       # each reduction's row value
    assert re.search(r"__shfl_xor_sync\(0xffffffffu, ae\d+, o\)", src)   # exponents cross lanes
    assert re.search(rf"__shared__ {expo} sh_ae\d+\[", src)        # ... and warps
    assert "shfl.sync.bfly" in ptx
    long = np.ones((2, 1 << 18), dtype)
    low, ptx = _ptx(lambda x: x.prod(axis=1), long)
    (launch,) = render_plan(low.plan)[1]
    assert launch.grid[0] == "split" and launch.workspace == 2    # both cross blocks
    assert re.search(rf"\*\({expo}\*\)\(ws \+", low.source) and re.search(rf"\*\({mant}\*\)\(ws \+", low.source)
    assert "tj_pm_ldexp(a" in low.source
