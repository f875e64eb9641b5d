# expect: TraceError: Python control flow
"""`if` on a traced value: its truth is not known while the kernel compiles."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def clamp(x):
    if x > 0:  # <- error
        return x
    return -x


def run():
    clamp(np.ones(4, np.float32))
