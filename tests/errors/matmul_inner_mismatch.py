# expect: ShapeError: inner dimensions differ
"""(3, 4) @ (5, 2): 4 != 5."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def project(x, w):
    return x @ w  # <- error


def run():
    project(np.ones((3, 4)), np.ones((5, 2)))
