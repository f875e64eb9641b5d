# expect: UnsupportedOpError: indexing with a value computed inside the kernel
"""x[i] where i is computed inside the kernel: a gather whose positions are data."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def pick_largest(x):
    return x[np.argmax(x)]  # <- error


def run():
    pick_largest(np.random.default_rng().standard_normal(8))
