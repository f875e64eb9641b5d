# expect: ShapeError: axis 2 is out of bounds for an array of dimension 2
"""A reduction over an axis the array does not have."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def col_sums(x):
    return x.sum(axis=2)  # <- error


def run():
    col_sums(np.ones((3, 4)))
