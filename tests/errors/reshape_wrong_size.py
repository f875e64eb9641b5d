# expect: ShapeError: cannot reshape array of size 12 into shape (5, 3)
"""reshape to a shape with another number of elements."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def grid(x):
    return x.reshape(5, 3) + 1  # <- error


def run():
    grid(np.ones(12))
