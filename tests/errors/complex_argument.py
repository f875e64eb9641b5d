# expect: DTypeError: complex64
"""A complex64 array argument."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def double(x):
    return x * 2


def run():
    double(np.ones(4, np.complex64))  # <- error
