# expect: ArgumentError: called with 1 argument
"""A two-argument kernel called with one argument."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def add(x, y):
    return x + y


def run():
    add(np.ones(3))  # <- error
