# expect: UnsupportedOpError: bitwise & on int32
"""& on integer arrays (torsh-jit has logical ops on bools only)."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def mask_bits(x, y):
    return x & y  # <- error


def run():
    mask_bits(np.arange(4, dtype=np.int32), np.ones(4, np.int32))
