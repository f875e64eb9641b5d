# expect: TraceError: Python control flow
"""`while` on a traced value."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def halve_until_small(x):
    while x.max() > 1:  # <- error
        x = x / 2
    return x


def run():
    halve_until_small(np.full(4, 10.0))
