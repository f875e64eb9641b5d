"""What a kernel reads is what numpy reads: array-likes are taken through numpy's own
reading (DLPack, `__array_interface__`, `__array__`), big-endian and unaligned arrays are
converted, before classification and launch (a kernel launched the original object: '>f4'
read as garbage, an object with only `__array_interface__` crashed the interpreter).
Results come back in the caller's kind (torch in, torch out), `out=` takes any layout
numpy's ufuncs take, keyword arguments bind as Python binds them. Results are compared
with numpy; objects that lie about their memory are driven in subprocesses, which must
end with numpy's numbers or a TorshJitError, never a signal."""
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


# -- every kind of argument, in a subprocess per target ---------------------------------------
_SWEEP = r"""
import sys
import numpy as np
import torsh_jit as tj

target, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
a = rng.standard_normal((3, 5))
try:
    import torch
except ImportError:
    torch = None

class OnlyInterface:           # its data through __array_interface__ alone
    def __init__(self, a=None, **iface):
        self._keep = a
        self.__array_interface__ = dict(a.__array_interface__) if a is not None else iface

class OnlyArray:               # through __array__ alone
    def __init__(self, make): self._make = make
    def __array__(self, dtype=None, copy=None): return self._make()

class OnlyDLPack:              # through DLPack alone
    def __init__(self, a, device=None, fail=False): self._a, self._dev, self._fail = a, device, fail
    def __dlpack__(self, **kw):
        if self._fail: raise RuntimeError("export refused")
        return self._a.__dlpack__(**kw)
    def __dlpack_device__(self): return self._dev or self._a.__dlpack_device__()

def unaligned(x):
    raw = np.zeros(x.nbytes + 1, np.uint8)
    u = raw[1:].view(x.dtype).reshape(x.shape)
    u[...] = x
    return u

def short_buffer():
    buf = bytearray(16)
    return OnlyInterface(shape=(100,), typestr="<f8", data=buf, version=3)

def bad_strides():
    return OnlyInterface(shape=(4,), typestr="<f8", data=bytearray(32), strides=(800,), version=3)

def raises(exc):
    def make():
        raise exc
    return make

accepted = {
    "c": lambda: a, "fortran": lambda: np.asfortranarray(a), "strided": lambda: a[:, ::2],
    "negative": lambda: a[::-1, ::-2], "broadcast": lambda: np.broadcast_to(a[:1], (4, 5)),
    "big-endian": lambda: a.astype(">f8"), "big-endian-int": lambda: (a * 9).astype(">i4"),
    "unaligned": lambda: unaligned(a), "empty": lambda: np.empty((3, 0)),
    "0-d": lambda: np.array(2.5), "numpy-scalar": lambda: np.float32(1.5),
    "int": lambda: 3, "float": lambda: 2.5, "bool": lambda: True,
    "bool-array": lambda: a > 0, "int32": lambda: (a * 9).astype(np.int32),
    "interface": lambda: OnlyInterface(a), "interface-strided": lambda: OnlyInterface(a[:, 1::2]),
    "interface-buffer": lambda: OnlyInterface(shape=(2, 2), typestr="<f4",
                                              data=bytearray(np.float32([1, 2, 3, 4]).tobytes()),
                                              version=3),
    "array-method": lambda: OnlyArray(lambda: a.T), "dlpack": lambda: OnlyDLPack(a[:, ::2]),
    "dlpack-refused-with-interface": lambda: type("Both", (OnlyInterface,), {
        "__dlpack__": lambda self, **kw: (_ for _ in ()).throw(BufferError("no")),
        "__dlpack_device__": lambda self: (1, 0)})(a),
}
refused = {
    "uint64": lambda: (a * 9 + 20).astype(np.uint64), "int8": lambda: (a * 9).astype(np.int8),
    "list": lambda: [1.0, 2.0], "none": lambda: None, "text": lambda: "1.5", "dict": lambda: {},
    "complex": lambda: 1j, "object-array": lambda: np.array([1, "a"], dtype=object),
    "matrix": lambda: np.matrix(a), "masked": lambda: np.ma.masked_array(a, a > 0),
    "null-pointer": lambda: OnlyInterface(shape=(4,), typestr="<f8", data=(0, False), version=3),
    "short-buffer": short_buffer, "strides-beyond-buffer": bad_strides,
    "bad-typestr": lambda: OnlyInterface(shape=(4,), typestr="<x9", data=bytearray(32), version=3),
    "negative-shape": lambda: OnlyInterface(shape=(-4,), typestr="<f8", data=bytearray(32), version=3),
    "interface-not-dict": lambda: type("NotDict", (), {"__array_interface__": 5})(),
    "object-interface": lambda: OnlyInterface(shape=(2,), typestr="|O", data=bytearray(16), version=3),
    "array-gives-list": lambda: OnlyArray(lambda: [1, 2]),
    "array-raises": lambda: OnlyArray(raises(RuntimeError("no data today"))),
    "dlpack-raises": lambda: OnlyDLPack(a, fail=True),
    "dlpack-other-device": lambda: OnlyDLPack(a, device=(7, 0)),
    "dlpack-device-raises": lambda: type("D", (), {"__dlpack__": lambda s, **k: None,
                                                   "__dlpack_device__": lambda s: 1 / 0})(),
}
if target == "host":
    refused["float16"] = lambda: a.astype(np.float16)        # no 16-bit floats on CPU targets
if torch is not None:
    t = torch.from_numpy(a)
    accepted.update({
        "torch": lambda: t, "torch-transposed": lambda: t.T, "torch-expanded": lambda: t[:1].expand(4, 5),
        "torch-int32": lambda: (t * 9).to(torch.int32), "torch-bool": lambda: t > 0,
        "torch-0-d": lambda: torch.tensor(2.5), "torch-slice": lambda: t[1:, ::2],
    })
    refused.update({
        "torch-requires-grad": lambda: torch.rand(3, requires_grad=True),
        "torch-bfloat16": lambda: torch.rand(3, dtype=torch.bfloat16),
        "torch-conj": lambda: torch.rand(3, dtype=torch.complex64).conj(),
    })

k = tj.kernel(lambda x: x * 2 + 1, target=target)
k2 = tj.kernel(lambda x, y: x - y, target=target)
def numpy_reading(x):
    if isinstance(x, OnlyDLPack):
        return np.from_dlpack(x)
    return np.asarray(x)

for name, make in accepted.items():
    x = make()
    ref = numpy_reading(x) * 2 + 1
    got = k(x)
    is_torch = type(x).__module__.startswith("torch")
    if is_torch:
        assert isinstance(got, torch.Tensor), (name, type(got))
    else:
        assert isinstance(got, (np.ndarray, np.generic)), (name, type(got))
    g = np.asarray(got)
    assert g.dtype == ref.dtype and g.shape == ref.shape, (name, g.dtype, ref.dtype, g.shape, ref.shape)
    np.testing.assert_array_equal(g, ref, err_msg=name)
    if np.ndim(ref) == 2 and ref.shape[1] == 5:       # with a second, numpy operand
        y = rng.standard_normal(5)
        np.testing.assert_array_equal(np.asarray(k2(x, y)), numpy_reading(x) - y, err_msg=name)
    print("accepted", name, flush=True)
for name, make in refused.items():
    try:
        got = k(make())
    except tj.TorshJitError as e:
        assert "internal error" not in str(e), (name, str(e))
        print("refused", name, flush=True)
    else:
        raise AssertionError(f"{name}: accepted, gave {got!r}")
print("done")
"""


@pytest.mark.parametrize("target", ["host", "aarch64-neon"])
def test_every_kind_of_argument_is_read_as_numpy_reads_it_or_refused(target, tmp_path, rng):
    """Every kind the kernel accepts gives numpy's numbers (on the host and emulated), in
    the caller's kind; every refused one a TorshJitError; the process never dies of a signal
    (an object with only __array_interface__ was SIGSEGV; a buffer shorter than the shape it
    claims was read past its end)."""
    require_target(target)
    env = dict(os.environ, TORSH_JIT_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", _SWEEP, target, str(int(rng.integers(1 << 31)))],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    lines = r.stdout.split("\n")
    assert lines[-2] == "done", r.stdout[-2000:]
    assert sum(ln.startswith("accepted") for ln in lines) >= 23
    assert sum(ln.startswith("refused") for ln in lines) >= 18


def test_torch_cpu_tensors_come_back_as_torch_tensors(rng):
    torch = _torch()
    a = torch.from_numpy(rng.standard_normal((5, 7)))
    b = torch.from_numpy(rng.standard_normal(7))
    got = tj.kernel(lambda x, y: x * y + 1)(a, b)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_array_equal(got.numpy(), a.numpy() * b.numpy() + 1)
    s, m = tj.kernel(lambda x: (x.sum(), x.max(axis=0)))(a)
    assert isinstance(s, torch.Tensor) and s.ndim == 0 and isinstance(m, torch.Tensor)
    np.testing.assert_allclose(s.item(), a.numpy().sum(), rtol=1e-12)
    np.testing.assert_array_equal(m.numpy(), a.numpy().max(axis=0))
    # numpy and torch mixed: the torch tensor makes it a torch call
    assert isinstance(tj.kernel(lambda x, y: x - y)(a.numpy(), b), torch.Tensor)
    # out= a torch tensor: written through DLPack, returned as it is
    o = torch.empty(5, 7, dtype=torch.float64)
    assert tj.kernel(lambda x, y: x * y + 1)(a, b, out=o) is o
    np.testing.assert_array_equal(o.numpy(), a.numpy() * b.numpy() + 1)
    with pytest.raises(tj.ArgumentError, match="detach"):
        tj.kernel(lambda x: x + 1)(torch.rand(3, requires_grad=True))


def _torch():
    """torch is part of CI's install: under TORSH_JIT_REQUIRE_RUNNERS=1 its absence fails."""
    if os.environ.get("TORSH_JIT_REQUIRE_RUNNERS") == "1":
        import torch
        return torch
    return pytest.importorskip("torch")


# -- out= -------------------------------------------------------------------------------------
_OUT_LAYOUTS = {
    "fortran": lambda s, d: np.empty(s, d, order="F"),
    "strided": lambda s, d: np.full((s[0], 2 * s[1]), 7, d)[:, ::2],
    "reversed": lambda s, d: np.empty(s, d)[::-1],
    "transposed": lambda s, d: np.empty(s[::-1], d).T,
    "big-endian": lambda s, d: np.empty(s, np.dtype(d).newbyteorder(">")),
    "float32 (same_kind cast)": lambda s, d: np.empty(s, np.float32),
}


@pytest.mark.parametrize("target", ["host", "aarch64-neon"])
def test_out_takes_every_layout_numpys_ufuncs_take(target, rng):
    """A strided, Fortran, reversed or big-endian out= is written correctly (it was refused),
    a float32 out= takes a float64 result as numpy's same_kind cast does."""
    require_target(target)
    k = tj.kernel(lambda x, y: x * y - 1, target=target)
    x, y = rng.standard_normal((6, 8)), rng.standard_normal(8)
    ref = x * y - 1
    for name, make in _OUT_LAYOUTS.items():
        o = make((6, 8), np.float64)
        assert k(x, y, out=o) is o, name
        np.testing.assert_array_equal(o, ref.astype(o.dtype), err_msg=name)
        if name == "strided":
            assert (o.base[:, 1::2] == 7).all()          # the skipped columns are untouched
    # in place on a Fortran array: numpy's result, as if computed first
    f = np.asfortranarray(x)
    k(f, y, out=f)
    np.testing.assert_array_equal(f, ref)


def test_out_errors_name_the_property_and_the_callers_line(rng):
    k = tj.kernel(lambda x, y: x * y - 1)
    x, y = rng.standard_normal((6, 8)), rng.standard_normal(8)
    ro = np.empty((6, 8))
    ro.flags.writeable = False
    cases = [(np.empty((6, 7)), r"out has shape \(6, 7\), the result has shape \(6, 8\)"),
             (np.empty((6, 8), np.int64), r"out has dtype int64, and the float64 result cannot be "
                                          r"cast to it"),
             (ro, "out is read-only"),
             ([[0.0] * 8] * 6, "out is a list, not an array the kernel can write into"),
             ((np.empty((6, 8)), np.empty((6, 8))), "out= has 2 array"),
             ]
    for o, msg in cases:
        with pytest.raises(tj.ArgumentError, match=msg) as e:
            k(x, y, out=o)
        assert f"{__file__}:" in str(e.value), str(e.value)
    assert ro.sum() == ro.sum()                              # nothing was written: no crash


# -- keyword arguments ------------------------------------------------------------------------
def test_keyword_arguments_bind_as_python_binds_them(rng):
    """Keywords gave a raw TypeError; now they bind as in the Python function."""
    def scaled(x, y, alpha=2.0):
        return x * alpha + y

    k = tj.kernel(scaled)
    x, y = rng.standard_normal(9), rng.standard_normal(9)
    np.testing.assert_array_equal(k(x, y=y), x * 2.0 + y)
    np.testing.assert_array_equal(k(y=y, x=x), x * 2.0 + y)
    np.testing.assert_array_equal(k(x, y, alpha=0.5), x * 0.5 + y)
    np.testing.assert_array_equal(k(x, alpha=-3.0, y=y), x * -3.0 + y)
    np.testing.assert_array_equal(k(x, y), x * 2.0 + y)
    with pytest.raises(tj.ArgumentError, match="unexpected keyword argument 'z'") as e:
        k(x, y, z=1.0)
    assert f"{__file__}:" in str(e.value)
    with pytest.raises(tj.ArgumentError, match="multiple values for argument 'x'"):
        k(x, x=x)
    with pytest.raises(tj.ArgumentError, match="missing a required argument: 'y'"):
        k(x, alpha=1.0)

    def kwonly(x, *, scale):
        return x * scale
    with pytest.raises(tj.ArgumentError, match="'scale' is a keyword-only parameter"):
        tj.kernel(kwonly)(x, scale=2.0)
