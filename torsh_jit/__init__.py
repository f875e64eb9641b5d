"""torsh-jit: a JIT and ahead-of-time kernel compiler for array code written in Python.

    import torsh_jit as tj

    @tj.kernel
    def gelu_mul(x, y):
        return 0.5 * x * (1 + tj.tanh(0.7978845608 * (x + 0.044715 * x**3))) * y

    out = gelu_mul(a, b)                 # numpy in, numpy out
    low = gelu_mul.lower(a, b)           # low.source: the generated code
"""
from __future__ import annotations

from .version import __version__

from .errors import (TorshJitError, TraceError, UnsupportedOpError, DTypeError, ShapeError,
                     ArgumentError, DomainError, TargetError, RunnerError, CompileError, CacheError,
                     TuneError, InternalError)
from .ir.tensor import Tensor
from .ir.functions import (exp, exp2, log, log2, log1p, expm1, sqrt, rsqrt, sin, cos, tan,
                           tanh, sigmoid, erf, floor, ceil, round, sign, relu, abs, neg, negative,
                           logical_not, add, sub, mul, truediv, floordiv, mod, pow, maximum, minimum,
                           eq, ne, lt, le, gt, ge, logical_and, logical_or, logical_xor, where, astype,
                           clip, sum, prod, mean, var, std, max, min, any, all, argmax, argmin, matmul)
from .ir.views import reshape, transpose, permute, swapaxes, broadcast_to, expand_dims, squeeze
from .kernel import Kernel, Lowered, kernel
from .target import Target, known_targets
from .runtime.aliases import resolve as parse_target
from .embed import Graph, compile


def autotune(fn, args, target="host", **kw):
    """Tune `fn` for these arguments (arrays or ArgSpecs) and store the result, so that
    `@tj.kernel(autotune=True)` uses it: see torsh_jit.tune.tune for the options."""
    from .tune import tune
    return tune(fn, args, target, **kw)
# What running a cached CPU kernel needs is loaded with the package, so that a warm start
# (a kernel from the disk cache in a new process) is not an import: LLVM (to load the object:
# llvmlite is 25 ms of import) and the launcher (2 ms). What only compiling needs is not:
# Jinja (29 ms), the code generators; tests/test_import_cost.py keeps it so.
from .backends.llvm import build as _llvm_build, launch as _llvm_launch  # noqa: F401,E402


def available_targets() -> list[str]:
    """Names of the targets that can execute on this machine now: natively, or through their
    runner (qemu-user, wasmtime) when it is installed. Best (highest rank) first."""
    from .runtime.hardware import can_run
    return [n for n, t in sorted(known_targets().items(), key=lambda kv: -kv[1].rank)
            if can_run(t)]


def targets() -> list[str]:
    """Every known target name."""
    return sorted(known_targets())
