"""Speed of the vmath functions against numpy, single thread.

    python benchmarks/vmath.py [-n ELEMENTS] [-r REPEATS] [func ...]

Each function runs over N elements (default 16M) at float32x16 and float64x8, in a
loop JIT-compiled for this CPU (MCJIT, O3), into a preallocated output; numpy does the
same ufunc with out=. The two alternate R times and each reports its best, in ns per
element. numpy has no
erf or sigmoid ufunc: erf is compared with scipy.special.erf when scipy is installed,
sigmoid with numpy's four in-place passes 1/(1 + exp(-x)). The assembly of the
compiled module is also checked for calls (a scalarised libm call would show there).
"""
from __future__ import annotations

import argparse
import ctypes
import re
import sys
import time
from pathlib import Path

import numpy as np
import llvmlite.binding as llvm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from torsh_jit.codegen.llvm.vmath import BINARY_FUNCS, VMATH_FUNCS, render_vmath, vmath_name  # noqa: E402

CONFIGS = [("float32", 16), ("float64", 8)]

# input ranges where each function does real work (and stays finite)
DOMAIN = {
    "exp": (-80, 80), "exp2": (-120, 120), "expm1": (-10, 10), "log": (1e-3, 1e3),
    "log2": (1e-3, 1e3), "log1p": (-0.9, 1e3), "sin": (-100, 100), "cos": (-100, 100),
    "tan": (-100, 100), "tanh": (-10, 10), "sigmoid": (-20, 20), "erf": (-4, 4),
    "pow": (0.1, 10),
}


def _numpy_sigmoid(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    np.add(out, 1, out=out)
    np.reciprocal(out, out=out)


def _baseline(func):
    if func == "sigmoid":
        return _numpy_sigmoid, "numpy 1/(1+exp(-x))"
    if func == "erf":
        try:
            from scipy.special import erf
        except ImportError:
            return None, "(no scipy)"
        return (lambda x, out: erf(x, out=out)), "scipy.special.erf"
    if func == "pow":
        return (lambda x, y, out: np.power(x, y, out=out)), "np.power"
    f = getattr(np, func)
    return (lambda x, out: f(x, out=out)), f"np.{func}"


def _wrapper_ir(func, dtype, width):
    scalar = "float" if dtype == "float32" else "double"
    vec = f"<{width} x {scalar}>"
    align = 4 if dtype == "float32" else 8   # numpy promises element alignment only
    nargs = 2 if func in BINARY_FUNCS else 1
    name = vmath_name(func, dtype, width)
    params = ", ".join(f"ptr %in{i}" for i in range(nargs))
    loads = "".join(f"  %p{i} = getelementptr {vec}, ptr %in{i}, i64 %i\n"
                    f"  %x{i} = load {vec}, ptr %p{i}, align {align}\n" for i in range(nargs))
    args = ", ".join(f"{vec} %x{i}" for i in range(nargs))
    return f"""
define void @run_{name}({params}, ptr %out, i64 %n) {{
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %inext, %loop ]
{loads}  %y = call {vec} @{name}({args})
  %po = getelementptr {vec}, ptr %out, i64 %i
  store {vec} %y, ptr %po, align {align}
  %inext = add i64 %i, 1
  %more = icmp ult i64 %inext, %n
  br i1 %more, label %loop, label %exit
exit:
  ret void
}}
"""


def _target_machine():
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3)


def compile_all(items):
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    mod = llvm.parse_assembly(render_vmath(items) + "".join(_wrapper_ir(*i) for i in items))
    mod.verify()
    tm = _target_machine()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
    pb.getModulePassManager().run(mod, pb)
    calls = sorted(set(re.findall(r"^\s*call\w*\s+(\S+)", _target_machine().emit_assembly(mod), re.M)))
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    fns = {}
    for func, dtype, width in items:
        nargs = 2 if func in BINARY_FUNCS else 1
        proto = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (nargs + 1), ctypes.c_int64)
        fns[(func, dtype, width)] = proto(engine.get_function_address("run_" + vmath_name(func, dtype, width)))
    return engine, fns, calls


def best_pair(ours, theirs, repeats):
    """Best times of two callables, run alternately so that a burst of load elsewhere
    on the machine hits both alike."""
    ours()
    if theirs is not None:
        theirs()   # warm: page in the output, settle clocks
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        for fn, times in ((ours, t_ours), (theirs, t_theirs)):
            if fn is None:
                continue
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(t_ours), (min(t_theirs) if t_theirs else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1 << 24, help="elements (a multiple of 16)")
    ap.add_argument("-r", type=int, default=5, help="repeats, best is reported")
    ap.add_argument("funcs", nargs="*", default=sorted(VMATH_FUNCS))
    args = ap.parse_args(argv)
    n = args.n // 16 * 16
    items = [(f, d, w) for f in args.funcs for d, w in CONFIGS]
    engine, fns, calls = compile_all(items)
    rng = np.random.default_rng(0)
    print(f"{n} elements, best of {args.r}, single thread; calls in compiled code: "
          f"{', '.join(calls) if calls else 'none'}")
    print(f"{'function':<9}{'dtype':<9}{'vmath ns/el':>12}{'numpy ns/el':>13}{'speedup':>9}  baseline")
    for func in args.funcs:
        base, label = _baseline(func)
        for dtype, width in CONFIGS:
            lo, hi = DOMAIN[func]
            ins = [rng.uniform(lo, hi, n).astype(dtype)]
            if func in BINARY_FUNCS:
                ins.append(rng.uniform(-20, 20, n).astype(dtype))
            out = np.empty(n, dtype)
            fn = fns[(func, dtype, width)]
            ptrs = [a.ctypes.data for a in ins] + [out.ctypes.data]
            theirs = (lambda: base(*ins, out)) if base is not None else None
            t_ours, t_np = best_pair(lambda: fn(*ptrs, n // width), theirs, args.r)
            if t_np is not None:
                np_col, ratio = f"{t_np / n * 1e9:13.3f}", f"{t_np / t_ours:8.2f}x"
            else:
                np_col, ratio = f"{'-':>13}", f"{'-':>9}"
            print(f"{func:<9}{dtype:<9}{t_ours / n * 1e9:12.3f}{np_col}{ratio}  {label}")
    del engine


if __name__ == "__main__":
    main()
