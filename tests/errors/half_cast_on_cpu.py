# expect: DTypeError: cannot hold (16-bit floats are for CUDA targets)
"""A cast to float16 inside a kernel compiled for the CPU (CPU kernels have no half floats)."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def halve(x):
    return (x * 0.5).astype(np.float16)  # <- error


def run():
    halve(np.ones(4, np.float32))
