"""What a kernel reads is what numpy reads: array-likes are taken through numpy's own
reading, big-endian and unaligned arrays are converted, before classification and launch
(a kernel launched the original object: '>f4' read as garbage, an object with only
`__array_interface__` crashed the interpreter). Results are compared with numpy."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import torsh_jit as tj

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "targets"))
from target_configs import require_target  # noqa: E402


@pytest.mark.parametrize("target", ["host", "aarch64-neon"])
def test_byte_order_and_alignment_as_numpy_reads_them(target, rng):
    require_target(target)
    k = tj.kernel(lambda x, y: x * 2 + y, target=target)
    x = rng.standard_normal(37).astype(">f4")
    y = rng.standard_normal(37).astype(">f8")
    got = k(x, y)
    np.testing.assert_allclose(got, x * 2 + y, rtol=1e-6)
    assert got.dtype == (x * 2 + y).dtype and got.dtype.isnative
    raw = np.zeros(8 * 37 + 1, np.uint8)
    un = raw[1:].view(np.float64)                       # not aligned
    un[:] = rng.standard_normal(37)
    assert not un.flags.aligned
    np.testing.assert_allclose(k(un.astype(np.float32), un), un.astype(np.float32) * 2 + un)


_ARRAY_LIKES = r"""
import sys
import numpy as np, torsh_jit as tj

class OnlyInterface:           # its data through __array_interface__ alone
    def __init__(self, a): self._keep = a; self.__array_interface__ = a.__array_interface__

class OnlyArray:               # through __array__ alone
    def __init__(self, a): self._a = a
    def __array__(self, dtype=None, copy=None): return self._a if dtype is None else self._a.astype(dtype)

a = np.random.default_rng(int(sys.argv[1])).standard_normal((4, 6))
k = tj.kernel(lambda x, y: x * y + 1)
for wrap in (OnlyInterface, OnlyArray):
    np.testing.assert_allclose(k(wrap(a), wrap(a.T.copy().T)), a * a + 1)
    np.testing.assert_allclose(tj.kernel(lambda x: x * 2)(wrap(a[:, ::2])), a[:, ::2] * 2)
print("ok")
"""


def test_array_likes_are_read_through_numpy_and_never_crash(tmp_path, rng):
    """In a subprocess: before, the launch read PyArrayObject fields from the object itself
    (wrong numbers, or SIGSEGV for an object with only __array_interface__)."""
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", _ARRAY_LIKES, str(int(rng.integers(1 << 31)))],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-3000:])


def test_torch_cpu_tensors_as_numpy_reads_them(rng):
    torch = pytest.importorskip("torch")
    a, b = torch.rand(5, 7, dtype=torch.float64), torch.rand(7, dtype=torch.float64)
    got = tj.kernel(lambda x, y: x * y + 1)(a, b)
    np.testing.assert_allclose(got, (a * b + 1).numpy())
    np.testing.assert_allclose(tj.kernel(lambda x: x + 1)(torch.arange(8.0)), np.arange(8.0) + 1)
    with pytest.raises(tj.ArgumentError, match="detach"):
        tj.kernel(lambda x: x + 1)(torch.rand(3, requires_grad=True))
