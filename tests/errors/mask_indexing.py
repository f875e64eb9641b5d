# expect: UnsupportedOpError: boolean mask indexing
"""x[x > 0]: a result whose length depends on the data, which a kernel cannot have."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def positives(x):
    return x[x > 0] * 2  # <- error


def run():
    positives(np.random.default_rng().standard_normal(8))
