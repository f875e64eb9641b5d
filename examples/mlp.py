"""A two-layer MLP block: matmul with a fused bias + GELU epilogue, then layernorm.

    python examples/mlp.py
"""
import numpy as np

import torsh_jit as tj


@tj.kernel
def mlp_block(x, w1, b1, w2, b2, gamma, beta):
    h = x @ w1 + b1
    h = 0.5 * h * (1 + tj.erf(h * 0.7071067811865476))
    y = h @ w2 + b2 + x                      # residual
    mu = y.mean(axis=-1, keepdims=True)
    var = ((y - mu) ** 2).mean(axis=-1, keepdims=True)
    return (y - mu) * tj.rsqrt(var + 1e-5) * gamma + beta


def reference(x, w1, b1, w2, b2, gamma, beta):
    from math import erf
    h = x.astype(np.float64) @ w1 + b1
    h = 0.5 * h * (1 + np.vectorize(erf)(h * 0.7071067811865476))
    y = h @ w2 + b2 + x
    mu = y.mean(axis=-1, keepdims=True)
    var = ((y - mu) ** 2).mean(axis=-1, keepdims=True)
    return (y - mu) / np.sqrt(var + 1e-5) * gamma + beta


if __name__ == "__main__":
    rng = np.random.default_rng()
    d, hdim, n = 128, 512, 64
    args = [rng.standard_normal((n, d)).astype(np.float32),
            (rng.standard_normal((d, hdim)) / np.sqrt(d)).astype(np.float32),
            rng.standard_normal(hdim).astype(np.float32) * 0.1,
            (rng.standard_normal((hdim, d)) / np.sqrt(hdim)).astype(np.float32),
            rng.standard_normal(d).astype(np.float32) * 0.1,
            rng.standard_normal(d).astype(np.float32),
            rng.standard_normal(d).astype(np.float32)]
    out = mlp_block(*args)
    ref = reference(*args)
    err = np.max(np.abs(out - ref))
    assert err < 1e-3, f"max error {err}"
    print(f"mlp_block: {mlp_block.lower(*args).n_kernels} kernels, max error vs float64 numpy {err:.2e}")
