"""Hunt for distinct failures without stopping at the first (not a test: run by hand).

    python tests/fuzz/explore.py [--target host] [-n 500] [--big]

Every failing program is printed once per kind of symptom (its first line, numbers
stripped). The pytest profiles (conftest.py) are what CI runs; this is for finding several bugs in one go."""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TORSH_JIT_CACHE_DIR", tempfile.mkdtemp(prefix="torsh-jit-fuzz-"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

import fuzz_check  # noqa: E402
from fuzz_programs import ALL_DTYPES, WGSL_DTYPES, programs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="host")
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--big", action="store_true")
    a = ap.parse_args()
    seen = {}
    dtypes = WGSL_DTYPES if a.target == "wgsl" else ALL_DTYPES

    @settings(max_examples=a.n, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    @given(programs(target=a.target, dtypes=dtypes, big=a.big, allow_errors=not a.big,
                    max_stmts=4 if a.big else 6))
    def run(prog):
        try:
            fuzz_check.check(prog)
        except fuzz_check.Mismatch as e:
            text = str(e)
            key = re.sub(r"\d+", "N", text.splitlines()[0])[:90]
            if key not in seen or len(prog.source()) < len(seen[key].source()):
                seen[key] = prog
                print(f"=== {key}\n{text}\n", flush=True)

    run()
    print(fuzz_check.summary())
    print("\n".join(fuzz_check.unsupported_kinds()))
    print(f"{len(seen)} kinds of failure:")
    for k, p in seen.items():
        print(f"--- {k}\n{p.source()}")


if __name__ == "__main__":
    main()
