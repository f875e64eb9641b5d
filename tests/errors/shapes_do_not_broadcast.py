# expect: ShapeError: do not broadcast
"""(3, 4) + (5,): trailing dimensions 4 and 5 differ."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def add(x, y):
    return x + y  # <- error


def run():
    add(np.ones((3, 4)), np.ones(5))
