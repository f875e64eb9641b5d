# expect: UnsupportedOpError: integer-array indexing
"""x[np.array([0, 2])]: fancy indexing (a gather) inside a kernel."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def rows_0_and_2(x):
    return x[np.array([0, 2])] + 1  # <- error


def run():
    rows_0_and_2(np.random.default_rng().standard_normal((4, 3)))
