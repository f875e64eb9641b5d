# expect: ArgumentError: argument 1 ('y') is a str
"""A string where an array belongs."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def add(x, y):
    return x + y


def run():
    add(np.ones(3), "1.0")  # <- error
