"""The dynamic-shape corpus (tests/dynamic_corpus.py) on every target the op corpus runs
on: each kernel compiled once with dynamic=True and called at 24 batch sizes (0, 1,
primes, sizes off the vector widths and tiles), every result numpy's. x86 levels run
natively; NEON, SVE and RVV under qemu-user, wasm in wasmtime; WGSL on lavapipe; metal in
the MSL harness."""
from __future__ import annotations

import numpy as np
import pytest

import torsh_jit as tj

from dynamic_corpus import CASES, batch_sizes, check
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
