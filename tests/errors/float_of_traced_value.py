# expect: TraceError: float()
"""float() of a traced value."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def scale(x):
    s = float(x.sum())  # <- error
    return x * s


def run():
    scale(np.ones(4))
