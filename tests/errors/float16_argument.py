# expect: DTypeError: float16
"""A float16 array argument (CPU kernels have no half floats)."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def double(x):
    return x * 2


def run():
    double(np.ones(4, np.float16))  # <- error
