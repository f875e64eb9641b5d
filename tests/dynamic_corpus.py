"""The kernels the shape-polymorphism tests call at many batch sizes: an elementwise chain,
a row softmax, a layernorm, a matmul with a bias and relu epilogue, a column sum. Each is
(name, kernel body, numpy reference, inputs for batch size n). The column sum is held to
the rounding of float32 partial sums: a few eps of the sum of |x| down each column."""
from __future__ import annotations

import numpy as np

import torsh_jit as tj


def _softmax(x):
    e = tj.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_np(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layernorm(x, w, b):
    m = x.mean(axis=-1, keepdims=True)
    d = x - m
    v = (d * d).mean(axis=-1, keepdims=True)
    return d / tj.sqrt(v + 1e-5) * w + b


def _layernorm_np(x, w, b):
    m = x.mean(axis=-1, keepdims=True, dtype=np.float64)
    d = x - m
    v = (d * d).mean(axis=-1, keepdims=True)
    return (d / np.sqrt(v + 1e-5) * w + b).astype(np.float32)


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


CASES = [
    ("chain", lambda x, y: tj.exp(x) * y + 1, lambda x, y: np.exp(x) * y + 1,
     lambda rng, n: (_f32(rng, n, 19), _f32(rng, n, 19))),
    ("softmax", _softmax, _softmax_np, lambda rng, n: (_f32(rng, n, 64),)),
    ("layernorm", _layernorm, _layernorm_np,
     lambda rng, n: (_f32(rng, n, 64), _f32(rng, 64), _f32(rng, 64))),
    ("matmul_epilogue", lambda x, w, b: tj.maximum(x @ w + b, 0),
     lambda x, w, b: np.maximum(x.astype(np.float64) @ w + b, 0).astype(np.float32),
     lambda rng, n: (_f32(rng, n, 32), _f32(rng, 32, 48), _f32(rng, 48))),
    ("column_sum", lambda x: x.sum(axis=0), lambda x: x.astype(np.float64).sum(axis=0),
     lambda rng, n: (_f32(rng, n, 40),)),
    # batch statistics: the count of a symbolic axis is counted by the kernel
    ("column_norm", lambda x: (x - x.mean(axis=0)) / (tj.std(x, axis=0, ddof=1) + 1.0),
     lambda x: ((x - x.mean(axis=0, dtype=np.float64))
                / (np.std(x.astype(np.float64), axis=0, ddof=1) + 1.0)).astype(np.float32),
     lambda rng, n: (_f32(rng, n, 24),)),
]


def batch_sizes(count: int, rng) -> list[int]:
    """count distinct sizes: 0, 1, small primes, sizes next to multiples of the vector
    widths and GPU tiles, and random ones up to 3000, shuffled (the first call is random)."""
    fixed = [0, 1, 2, 3, 5, 7, 13, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 257, 1021]
    rest = [int(v) for v in rng.choice(np.arange(4, 3000), size=3 * count, replace=False)]
    out = list(dict.fromkeys(fixed + rest))[:count]
    rng.shuffle(out)
    return out


def check(name, got, want, args=()) -> None:
    assert got.shape == want.shape, (name, got.shape, want.shape)
    if name.startswith("column_sum"):
        bound = 8 * np.finfo(np.float32).eps * np.abs(args[0]).astype(np.float64).sum(axis=0) + 1e-30
        assert np.all(np.abs(got - want) <= bound), (name, np.max(np.abs(got - want) / bound))
        return
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=name)
