"""The `torsh-jit` command line: demo, targets, explain, compile, tune, cache."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from . import errors as E


def load_function(ref: str):
    """'path/to/file.py:func' -> the Python function (a @tj.kernel's wrapped function too)."""
    if ":" not in ref:
        raise E.ArgumentError(f"cannot read {ref!r}", hint="write FILE:FUNCTION, e.g. model.py:gelu")
    path, _, func = ref.rpartition(":")
    p = Path(path)
    if not p.is_file():
        raise E.ArgumentError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(p.stem, p)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(p.parent.resolve()))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    if not hasattr(mod, func):
        names = [n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n))]
        raise E.ArgumentError(f"{path} has no function {func!r}",
                              hint="functions there: " + ", ".join(names))
    fn = getattr(mod, func)
    from .kernel import Kernel
    return fn.fn if isinstance(fn, Kernel) else fn


def _specs(args):
    from .aot import parse_arg
    return tuple(parse_arg(a) for a in (args or []))


def cmd_targets(ns) -> int:
    from .target import known_targets
    from .runtime.hardware import runs_natively, runner_available, host_target
    from .backends.runners import why_missing
    try:
        host = host_target().name
    except E.TorshJitError:
        host = None
    print(f"{'target':<18} {'language':<9} {'runs here':<14} description")
    missing = []
    for name, t in sorted(known_targets().items(), key=lambda kv: (kv[1].language, -kv[1].rank)):
        here = "native" if runs_natively(t) else t.runner if runner_available(t) else "no"
        if here == "no":
            missing.append((name, why_missing(t) if t.runner != "native" else "this CPU cannot run it"))
        mark = " (host)" if name == host else ""
        print(f"{name:<18} {t.language:<9} {here:<14} {t.description}{mark}")
    print("\naliases: host = the best target above that runs natively" + (f" ({host})" if host else ""))
    for name, why in missing:
        print(f"{name}: {why}")
    return 0


def cmd_runners(ns) -> int:
    """What each emulated target needs, and (--install) installing it."""
    from .backends.runners import all_missing, kind, why_missing
    from .backends.runners.install import install
    from .target import known_targets
    if ns.install:
        install()       # what is still missing is printed; a test run under CI fails on it
        return 0
    miss = all_missing()
    for name, t in sorted(known_targets().items()):
        if kind(t):
            print(f"{name:<18} {t.runner:<14} " + ("ready" if name not in miss else why_missing(t)))
    return 1 if miss else 0


def cmd_explain(ns) -> int:
    from .kernel import Kernel
    fn = load_function(ns.function)
    low = Kernel(fn, ns.target).lower(*_specs(ns.arg))
    from .explain import assembly, explain_plan, has_assembly, tuning_section
    # --asm on a target with no assembly (MSL, WGSL): the source is what there is, so it is
    # printed even under --no-source, and the error after it says why there is nothing more
    no_asm = ns.asm and not has_assembly(low.target)
    print(explain_plan(low.plan, low.source, show_source=not ns.no_source or no_asm,
                       tuning=tuning_section(fn, low.plan)))
    if ns.asm:
        sys.stdout.flush()
        text = assembly(low.source, low.target, low.plan)
        print("\n== assembly " + "=" * 60)
        print(text)
    return 0


def cmd_compile(ns) -> int:
    from .aot import compile_bundle, parse_args
    fn = load_function(ns.function)
    targets = [t.strip() for t in ns.target.split(",") if t.strip()]
    m = compile_bundle(fn, parse_args(ns.arg or []), targets, ns.output, name=ns.name)
    print(f"manifest: {Path(ns.output) / 'manifest.json'} ({len(m['entries'])} target(s))")
    return 0


def cmd_tune(ns) -> int:
    import math
    from .tune import stored, tune
    from .tune.records import autotune_enabled
    fn = load_function(ns.function)
    if not ns.arg:
        raise E.TuneError("tune needs the arguments' types", where=ns.function,
                          hint="repeat --arg per argument, e.g. --arg f32[1024,1024] --arg f32[1024,1024]")
    specs = _specs(ns.arg)
    if ns.plot:
        from .tune import pyplot
        pyplot()         # matplotlib missing: say so now, not after the tuning's minute
    if not autotune_enabled():
        from .kernel import Kernel
        k = Kernel(fn, ns.target)
        dec, p0 = stored(fn, k.specs_of(specs), k.target, exact=ns.exact)
        print("TORSH_JIT_AUTOTUNE=0: nothing measured.")
        print("stored: " + ("; ".join(map(str, dec.configs)) + f" ({dec.speedup:.2f}x default)"
                            if dec else "none (the defaults are used)"))
        return 0
    res = tune(fn, specs, ns.target, budget_s=ns.budget_s, trials=ns.trials, exact=ns.exact,
               exhaustive=True if ns.exhaustive else None, workers=ns.workers, progress=not ns.quiet)
    print(f"{fn.__name__} on {res.subject.bucket} ({', '.join(res.kinds)}): {res.strategy} search, "
          f"{res.candidates} candidates, {res.fresh} measured now, {res.reused} from earlier runs, "
          f"{res.wall_s:.1f} s")
    print(res.format_table(ns.top))
    if res.busy_note():
        print(res.busy_note())
    if math.isfinite(res.time_s):
        use = 'autotune="exact"' if ns.exact else "autotune=True"
        print(f"default {res.default_time_s * 1e3:.3f} ms, chosen {res.time_s * 1e3:.3f} ms: "
              f"{res.speedup:.2f}x; stored for @tj.kernel({use})")
    else:
        print("no candidate ran; nothing stored")
    if ns.plot:
        print("plot: " + res.plot(ns.plot))
    elif ns.text_plot:
        print(res.text_plot())
    return 0 if math.isfinite(res.time_s) else 1


def cmd_cache(ns) -> int:
    from .cache import get_cache
    c = get_cache()
    if ns.action == "info":
        info = c.info()
        for k, v in info.items():
            print(f"{k}: {v}")
    elif ns.action == "clear":
        print(f"removed {c.clear()} entries from {getattr(c, 'root', '(disabled)')}")
    elif ns.action == "prune":
        n = c.prune(max_bytes=int(ns.max_mb * (1 << 20)) if ns.max_mb is not None else None,
                    older_than_s=ns.older_than_days * 86400 if ns.older_than_days is not None else None)
        print(f"pruned {n} entries")
    return 0


def _median_time(f, n=7):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def cmd_demo(ns) -> int:
    import numpy as np
    import torsh_jit as tj
    from .cache import get_cache
    rng = np.random.default_rng()
    n = ns.size

    def chain(a, b, c):
        return np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)

    def gelu_mul(x, y):
        return 0.5 * x * (1 + tj.tanh(0.7978845608 * (x + 0.044715 * x ** 3))) * y

    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def layernorm(x, w, b):
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * w + b

    def linear_relu(x, w, b):
        return np.maximum(x @ w + b, 0)

    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    rows = rng.standard_normal((n // 1024, 1024)).astype(np.float32)
    w, bias = rng.standard_normal(1024).astype(np.float32), rng.standard_normal(1024).astype(np.float32)
    x2 = rng.standard_normal((512, 512)).astype(np.float32)
    w2 = rng.standard_normal((512, 512)).astype(np.float32)
    b2 = rng.standard_normal(512).astype(np.float32)
    cases = [("chain exp*b+sin*0.5-tanh", chain, (a, b, c)),
             ("gelu(x)*y", gelu_mul, (a, b)),
             (f"softmax {rows.shape}", softmax, (rows,)),
             (f"layernorm {rows.shape}", layernorm, (rows, w, bias)),
             ("relu(x @ w + b) 512^2", linear_relu, (x2, w2, b2))]
    print(f"torsh-jit {tj.__version__} demo on {tj.available_targets()[0]} "
          f"(targets that run here: {', '.join(tj.available_targets())})\n")
    print(f"{'example':<28} {'kernels':>7} {'compile':>9} {'torsh-jit':>10} {'numpy':>9} {'speed-up':>8}  max err")
    for name, f, args in cases:
        k = tj.kernel(f)
        t0 = time.perf_counter()
        out = k(*args)
        tc = time.perf_counter() - t0
        ref = f(*args)
        err = float(np.max(np.abs(out.astype(np.float64) - ref)))
        tt = _median_time(lambda: k(*args))
        tn = _median_time(lambda: f(*args))
        nk = k.lower(*args).n_kernels
        print(f"{name:<28} {nk:>7} {tc * 1e3:>7.1f}ms {tt * 1e3:>8.2f}ms {tn * 1e3:>7.2f}ms "
              f"{tn / tt:>7.2f}x  {err:.2e}")
    low = tj.kernel(softmax).lower(rows)
    print("\nsoftmax, as fused:")
    for g, cfg in zip(low.groups, low.configs):
        print(f"  {g.describe()}\n    {cfg}")
    cache = get_cache()
    print(f"\ncache: {getattr(cache, 'root', 'disabled (TORSH_JIT_CACHE=0)')} "
          f"({cache.info().get('entries', 0)} entries); a second run loads these kernels from disk.")
    print("see the generated code: torsh-jit explain examples/softmax.py:softmax --arg f32[4096,1024]")
    return 0


def main(argv=None) -> int:
    from .version import __version__
    ap = argparse.ArgumentParser(prog="torsh-jit", description="torsh-jit kernel compiler")
    ap.add_argument("--version", action="version", version=f"torsh-jit {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="compile and run a few examples here, against numpy")
    d.add_argument("--size", type=int, default=1 << 22, help="elements per array (default 4M)")
    d.set_defaults(func=cmd_demo)
    t = sub.add_parser("targets", help="known targets and which run here")
    t.set_defaults(func=cmd_targets)
    for name, helptext in (("explain", "show graph, passes, groups, configs and generated source"),
                           ("compile", "ahead-of-time: object file, C header, manifest")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("function", help="FILE.py:FUNCTION")
        p.add_argument("--arg", action="append", metavar="SPEC",
                       help="an argument, e.g. f32[4096,1024] (array) or f64 (scalar); repeat per argument")
        p.add_argument("--target", default="host", help="target name(s), comma separated for compile")
        if name == "explain":
            p.add_argument("--asm", action="store_true",
                           help="also print the target assembly (CPU: LLVM's; CUDA: PTX, and SASS "
                                "with cuobjdump or nvdisasm; metal and wgsl have none)")
            p.add_argument("--no-source", action="store_true", help="leave out the generated source")
            p.set_defaults(func=cmd_explain)
        else:
            p.add_argument("-o", "--output", required=True, help="output directory")
            p.add_argument("--name", default=None, help="C function name (default: the Python name)")
            p.set_defaults(func=cmd_compile)
    tp = sub.add_parser("tune", help="autotune a function's configs and store them in the cache")
    tp.add_argument("function", help="FILE.py:FUNCTION")
    tp.add_argument("--arg", action="append", metavar="SPEC",
                    help="an argument, e.g. f32[1024,1024]; repeat per argument")
    tp.add_argument("--target", default="host", help="target name (default: host)")
    tp.add_argument("--budget-s", type=float, default=60.0, help="wall-clock budget (default 60 s)")
    tp.add_argument("--trials", type=int, default=None, help="at most this many new measurements")
    tp.add_argument("--exact", action="store_true", help="tune this exact shape, not its bucket")
    tp.add_argument("--exhaustive", action="store_true", help="measure every candidate (budget allowing)")
    tp.add_argument("--workers", type=int, default=None, help="compile processes (default: CPUs, at most 4)")
    tp.add_argument("--top", type=int, default=10, help="rows of the table (default 10)")
    tp.add_argument("--plot", default=None, metavar="PATH",
                    help="time against config, as a PNG (needs matplotlib: pip install 'torsh-jit[plot]')")
    tp.add_argument("--text-plot", action="store_true", help="print a text plot of time against config")
    tp.add_argument("--quiet", action="store_true", help="no progress bar")
    tp.set_defaults(func=cmd_tune)
    r = sub.add_parser("runners", help="emulators for other ISAs (qemu-user, wasmtime): status, --install")
    r.add_argument("--install", action="store_true",
                   help="install what is missing (apt-get as root or through sudo, pip)")
    r.set_defaults(func=cmd_runners)
    c = sub.add_parser("cache", help="the compiled-kernel cache")
    c.add_argument("action", choices=["info", "clear", "prune"])
    c.add_argument("--max-mb", type=float, default=None, help="prune: keep at most this many MiB")
    c.add_argument("--older-than-days", type=float, default=None, help="prune: drop entries unused this long")
    c.set_defaults(func=cmd_cache)
    ns = ap.parse_args(argv)
    try:
        return ns.func(ns)
    except E.TorshJitError as e:
        print(f"torsh-jit: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`torsh-jit targets | head`): stop quietly, as cat does; point
        # stdout at devnull so the interpreter's own flush at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
