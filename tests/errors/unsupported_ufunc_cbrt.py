# expect: UnsupportedOpError: np.cbrt
"""A unary numpy ufunc torsh-jit does not implement."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def cube_root(x):
    return np.cbrt(x) + 1  # <- error


def run():
    cube_root(np.ones(4))
