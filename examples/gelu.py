"""The README example: an elementwise chain with a constant, fused into one kernel.

    python examples/gelu.py
"""
import numpy as np

import torsh_jit as tj


@tj.kernel
def gelu_mul(x, y):
    return 0.5 * x * (1 + tj.tanh(0.7978845608 * (x + 0.044715 * x**3))) * y


if __name__ == "__main__":
    rng = np.random.default_rng()
    a = rng.standard_normal(1_000_003).astype(np.float32)
    b = rng.standard_normal(1_000_003).astype(np.float32)
    out = gelu_mul(a, b)
    ref = 0.5 * a * (1 + np.tanh(0.7978845608 * (a + 0.044715 * a**3))) * b
    assert out.dtype == np.float32 and np.allclose(out, ref, rtol=1e-5, atol=1e-6)
    print(f"gelu_mul: {gelu_mul.lower(a, b).n_kernels} kernel on {tj.available_targets()[0]}, "
          "matches numpy")
    print(gelu_mul.lower(a, b).source.splitlines()[0])
