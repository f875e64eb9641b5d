# expect: TargetError: unknown target 'wasm64'
"""An unknown target given to .lower(): reported at that call, with the known names."""
import numpy as np

import torsh_jit as tj


@tj.kernel
def double(x):
    return x * 2


def run():
    double.lower(np.ones(3), target="wasm64")  # <- error
