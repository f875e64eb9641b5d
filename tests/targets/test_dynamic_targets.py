"""The dynamic-shape corpus (tests/dynamic_corpus.py) on every target the op corpus runs
on: each kernel compiled once with dynamic=True and called at 24 batch sizes (0, 1,
primes, sizes off the vector widths and tiles), every result numpy's. x86 levels run
natively; NEON, SVE and RVV under qemu-user, wasm in wasmtime; WGSL on lavapipe; metal in
the MSL harness."""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj

from dynamic_corpus import CASES, _f32, batch_sizes, check
from target_configs import configs


@pytest.fixture(params=configs())
def target(request, monkeypatch):
    from target_configs import require_target
    name, env = request.param
    require_target(name)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return name


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_dynamic_corpus_compiles_once_per_kernel(target, case, rng):
    name, body, ref, make = case
    k = tj.kernel(body, target=target, dynamic=True)
    for n in batch_sizes(24, rng):
        args = make(rng, n)
        check(f"{name} n={n} on {target}", np.asarray(k(*args)), ref(*args), args)
    assert k.compiles == 1, f"{name} on {target}: {k.compiles} compiles for 24 sizes"


ROW_LENGTHS = (1024, 1000, 4096, 4100, 1, 7, 256, 2048, 3)


@pytest.mark.parametrize("target", ["metal", "wgsl", "host"])
@pytest.mark.parametrize("case", [c for c in CASES if c[0] in ("softmax", "layernorm")],
                         ids=lambda c: c[0])
def test_symbolic_row_lengths_cross_the_schedule_guards(target, case, rng):
    """dynamic=True over the row length: the GPU schedules keep a row in registers and read
    it in groups of 4 under guards on the length (a multiple of 4, at most the cached
    length); lengths on either side of them compile another variant or reuse one, never a
    kernel that covers part of a row."""
    from target_configs import require_target
    require_target(target)
    name, body, ref, _ = case
    k = tj.kernel(body, target=target, dynamic=True)
    for K in ROW_LENGTHS:
        args = (_f32(rng, 3, K),) if name == "softmax" else \
            (_f32(rng, 3, K), _f32(rng, K), _f32(rng, K))
        check(f"{name} K={K} on {target}", np.asarray(k(*args)), ref(*args), args)
    assert k.compiles <= 4, f"{name} on {target}: {k.compiles} compiles for {len(ROW_LENGTHS)} lengths"
