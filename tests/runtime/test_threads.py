"""Threads: a fresh process whose first kernel calls come from 8 threads at once gets the
right answers and exits cleanly, on every kind of CPU runner (native, qemu-user, wasmtime)
and on the MSL harness, WGSL and CUDA where they run here.

Each case runs in a subprocess (a segfault must fail the test, not end the session), with
an empty cache directory of its own, so the first calls really initialise LLVM, the
engines, the runners and the templates, and really compile."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))
from target_configs import require_target  # noqa: E402

TARGETS = ["host", "aarch64-neon", "riscv64-rvv", "wasm32-simd128", "metal", "wgsl", "cuda"]
N_THREADS = 8

# The child: every thread waits at a barrier, then makes its first calls together with the
# others: a kernel of its own (a different graph per thread: different kinds, and a constant
# of its own) and one kernel object all threads share. The main thread checks every result
# against numpy after the joins, so a failure names the thread and kernel.
_CHILD = r'''
import sys, threading, traceback
import numpy as np
import torsh_jit as tj

target, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
a = rng.standard_normal((16, 33)).astype(np.float32)
b = rng.standard_normal((16, 33)).astype(np.float32)
# large enough for the CPU targets' thread pool to split the work (two calls at once)
big_a, big_b = rng.standard_normal((2, 1 << 17)).astype(np.float32)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def own(i):
    """(function, numpy reference) of thread i's own kernel."""
    c = np.float32(1.0 + 0.25 * i)
    kinds = [
        (lambda x, y: x * y + c, lambda: a * b + c),
        (lambda x, y: tj.exp(x * c) - y, lambda: np.exp(a * c) - b),
        (lambda x, y: tj.sum(x * y + c, axis=-1), lambda: (a * b + c).sum(axis=-1)),
        (lambda x, y: tj.exp(x * c - tj.max(x * c, axis=-1, keepdims=True))
         / tj.sum(tj.exp(x * c - tj.max(x * c, axis=-1, keepdims=True)), axis=-1, keepdims=True),
         lambda: softmax(a * c)),
    ]
    return kinds[i % len(kinds)]


shared = tj.kernel(lambda x, y: tj.maximum(x, y) * 2.0 - x, target=target)
start = threading.Barrier(n)
results, errors = {}, []


def run(i):
    fn, _ = own(i)
    k = tj.kernel(fn, target=target)
    try:
        start.wait()
        results[i] = (k(a, b), shared(a, b), shared(a, b), shared(big_a, big_b))
    except BaseException:
        errors.append(f"thread {i}:\n{traceback.format_exc()}")


threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit("".join(errors))
want_shared = np.maximum(a, b) * 2.0 - a
want_big = np.maximum(big_a, big_b) * 2.0 - big_a
for i in range(n):
    got, s1, s2, s3 = results[i]
    np.testing.assert_allclose(got, own(i)[1](), rtol=1e-4, atol=1e-5,
                               err_msg=f"thread {i}'s own kernel")
    for s, want in ((s1, want_shared), (s2, want_shared), (s3, want_big)):
        np.testing.assert_allclose(s, want, rtol=1e-6, atol=1e-6,
                                   err_msg=f"thread {i}'s call of the shared kernel")
print("ok")
'''


@pytest.mark.parametrize("target", TARGETS)
def test_first_calls_from_many_threads(target, rng, tmp_path):
    if target == "cuda":
        from torsh_jit.backends import cuda
        if not cuda.gpu_available():
            pytest.skip("no CUDA GPU here: the GPU machine runs this case (NVRTC, cupy, launch)")
    else:
        require_target(target)
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("TORSH_JIT_CACHE", None)
    seed = int(rng.integers(1 << 32))
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _CHILD, target, str(seed),
                        str(N_THREADS)], env=env, capture_output=True, text=True, timeout=600)
    # a negative code is a signal (SIGSEGV, SIGABRT from "LLVM ERROR: ..."): say which
    assert r.returncode == 0, (f"{target}: the child exited with {r.returncode} (seed {seed})\n"
                               f"stdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-8000:]}")
    assert r.stdout.strip().endswith("ok")
