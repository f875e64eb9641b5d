# expect: UnsupportedOpError: np.arctan2
"""A numpy ufunc torsh-jit does not implement."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def angle(y, x):
    return np.arctan2(y, x)  # <- error


def run():
    angle(np.ones(4), np.ones(4))
