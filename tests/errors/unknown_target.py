# expect: TargetError: did you mean 'x86_64-avx2'
"""A target name that does not exist (a typo of x86_64-avx2): reported at the decorator."""
import numpy as np

import torsh_jit as tj


def run():
    @tj.kernel(target="x86_64-avx3")  # <- error
    def double(x):
        return x * 2

    double(np.ones(3))
