"""Row softmax and log-softmax: one fused kernel each (a max pass, a sum pass, a write pass).

    python examples/softmax.py
    torsh-jit explain examples/softmax.py:softmax --arg f32[4096,1024]
"""
import numpy as np

import torsh_jit as tj


@tj.kernel
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@tj.kernel
def log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


if __name__ == "__main__":
    x = np.random.default_rng().standard_normal((4096, 1024)).astype(np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    ref = e / e.sum(axis=-1, keepdims=True)
    out = softmax(x)
    assert np.allclose(out, ref, rtol=1e-5, atol=1e-7), "softmax differs from numpy"
    assert np.allclose(log_softmax(x), np.log(ref), rtol=1e-4, atol=1e-5), "log_softmax differs"
    print(f"softmax {x.shape}: {softmax.lower(x).n_kernels} kernel, matches numpy")
