# expect: UnsupportedOpError: captured from outside the kernel
"""A numpy array captured by the kernel's closure instead of passed in."""
import numpy as np

import torsh_jit as tj

WEIGHTS = np.arange(4, dtype=np.float32)


@tj.kernel
def weighted(x):
    return x * WEIGHTS  # <- error


def run():
    weighted(np.ones(4, np.float32))
