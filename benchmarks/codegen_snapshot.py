"""Snapshot of what torsh-jit generates, to prove a refactor changed no generated code.

For every case of `tests/targets/op_corpus.py` (and a few GPU-shaped workloads: softmax,
layernorm, f32 and bf16 GEMMs with an epilogue) on every target, writes the generated source
and the configs chosen for it to one file per (case, target) under DIR, and compares two
such directories:

    python benchmarks/codegen_snapshot.py write DIR        # nothing is compiled or run
    python benchmarks/codegen_snapshot.py compare OLD NEW  # exit 1 on any difference

A pair that cannot be lowered (a dtype the target lacks, say) is recorded as its error's
class and message, so a change in what is refused shows up too.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "targets"))


def _workloads():
    """(name, fn(F) -> function, make(rng) -> args, dtypes it computes in)."""
    from op_corpus import CASES, NARROW_CASES, case_dtypes
    out = [(c.name, c.fn, c.make, case_dtypes(c)) for c in CASES + NARROW_CASES]

    def softmax(F):
        def f(x):
            e = F.exp(x - F.max(x, axis=-1, keepdims=True))
            return e / F.sum(e, axis=-1, keepdims=True)
        return f

    def layernorm(F):
        def f(x, w, b):
            m = F.mean(x, axis=-1, keepdims=True)
            d = x - m
            v = F.mean(d * d, axis=-1, keepdims=True)
            return d / F.sqrt(v + 1e-5) * w + b
        return f

    def gemm_relu(F):
        return lambda a, b: F.maximum(F.matmul(a, b), 0)

    f32 = lambda *s: lambda rng: tuple(rng.standard_normal(x).astype(np.float32) for x in s)  # noqa: E731

    def bf16(*s):
        def make(rng):
            import ml_dtypes
            return tuple(rng.standard_normal(x).astype(ml_dtypes.bfloat16) for x in s)
        return make

    out += [("softmax-f32-512x1000", softmax, f32((512, 1000)), {"float32"}),
            ("layernorm-f32-256x768", layernorm, f32((256, 768), (768,), (768,)), {"float32"}),
            ("gemm-relu-f32-256x192x320", gemm_relu, f32((256, 320), (320, 192)), {"float32"}),
            ("gemm-relu-bf16-512x512x512", gemm_relu, bf16((512, 512), (512, 512)), {"bfloat16"})]
    return out


def write(dest: Path) -> int:
    import torsh_jit as tj
    from torsh_jit.target import known_targets
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for tname in sorted(known_targets()):
        for name, fn, make, _dtypes in _workloads():
            args = make(np.random.default_rng(0))
            try:
                low = tj.kernel(fn(tj)).lower(*args, target=tname)
                text = "== configs\n" + "\n".join(map(repr, low.configs)) + "\n== source\n" + low.source
            except Exception as e:       # recorded: what is refused is part of the snapshot
                text = f"== error\n{type(e).__name__}: {e}\n"
            # the checkout's path out of error locations, and the module's name (a hash of
            # the plan and of the package's code: any edit changes it) out of symbols
            text = re.sub(r"tj_[0-9a-f]{16}(?![0-9a-f])", "tj_<module>", text.replace(str(ROOT), "<repo>"))
            (dest / f"{tname}--{name}.txt").write_text(text)
            n += 1
    print(f"wrote {n} snapshots to {dest}")
    return 0


def compare(old: Path, new: Path) -> int:
    a = {p.name: p for p in old.glob("*.txt")}
    b = {p.name: p for p in new.glob("*.txt")}
    differ = [k for k in sorted(a.keys() & b.keys()) if a[k].read_bytes() != b[k].read_bytes()]
    for k in sorted(a.keys() ^ b.keys()):
        print(f"only in {'old' if k in a else 'new'}: {k}")
    for k in differ:
        diff = list(difflib.unified_diff(a[k].read_text().splitlines(), b[k].read_text().splitlines(),
                                         f"old/{k}", f"new/{k}", lineterm="", n=1))
        print("\n".join(diff[:40]) + ("\n  ..." if len(diff) > 40 else ""))
    same = len(a.keys() & b.keys()) - len(differ)
    print(f"{same} identical, {len(differ)} differ, {len(a.keys() ^ b.keys())} in one only")
    return 1 if differ or a.keys() != b.keys() else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("write").add_argument("dir", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    ns = ap.parse_args(argv)
    return write(ns.dir) if ns.cmd == "write" else compare(ns.old, ns.new)


if __name__ == "__main__":
    sys.exit(main())
