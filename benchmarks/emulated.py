"""Quality of code under emulation: instructions executed per element on aarch64 and riscv64,
torsh-jit against the same computation in C compiled by the cross gcc.

    python benchmarks/emulated.py            # the table
    python benchmarks/emulated.py --json out.json

Counts come from qemu-user's own logs, so any qemu-user works (Debian's qemu 10 from
backports is built without plugin support): `-d in_asm` gives each translated block's
instructions, `-d exec,nochain` logs every block as it executes; the count is the sum over
the blocks executed between two marker functions the driver calls right before and after
the one call being measured. So it is exactly the instructions the kernel executed, libm
calls included, and nothing of the program around it.

Computations: the chain exp(a)*b + sin(c)*0.5 - tanh(a*c) over float32 (per element), and
a float32 matmul C = A @ B (per multiply-add). torsh-jit's side is its object code for the
target, called through its serial entry. The C side is compiled with -O3 -ffast-math for
the same ISA level (-march=armv8-a, armv8-a+sve, rv64gcv), calling libm's expf/sinf/tanhf,
as a C programmer would write it; gcc's vectoriser report says which loops it vectorised.
The ratio is torsh-jit / gcc: below 1, torsh-jit executes fewer instructions.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torsh_jit as tj  # noqa: E402
from torsh_jit.backends.llvm.build import build_object  # noqa: E402
from torsh_jit.backends.runners import available, why_missing  # noqa: E402
from torsh_jit.backends.runners.qemu import emulator_command  # noqa: E402

N_CHAIN = 1 << 14
MM = 96             # M = N = K

# (label, target, emulated vector length, gcc -march)
CONFIGS = [
    ("aarch64 NEON", "aarch64-neon", None, "armv8-a"),
    ("aarch64 SVE VL128", "aarch64-sve", 128, "armv8-a+sve"),
    ("aarch64 SVE VL256", "aarch64-sve", 256, "armv8-a+sve"),
    ("riscv64 RVV VLEN128", "riscv64-rvv", 128, "rv64gcv"),
    ("riscv64 RVV VLEN256", "riscv64-rvv", 256, "rv64gcv"),
]

# The driver: inputs made in the program, the one measured call between the markers.
DRIVER_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline, noipa)) void tj_mark_begin(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline, noipa)) void tj_mark_end(void) { __asm__ volatile("nop" ::: "memory"); }
#if KIND == 0
#define NIN 3
#define NOUT 1
#define LEN_IN N_CHAIN
#define LEN_OUT N_CHAIN
#else
#define NIN 2
#define NOUT 1
#define LEN_IN (MM * MM)
#define LEN_OUT (MM * MM)
#endif
#ifdef TORSH
extern void ENTRY(void **buffers);
#elif KIND == 0
void chain_c(const float *restrict a, const float *restrict b, const float *restrict c, float *restrict o);
#else
void matmul_c(const float *restrict a, const float *restrict b, float *restrict c);
#endif
int main(void) {
    float *buf[NIN + NOUT];
    unsigned s = 12345;
    for (int i = 0; i < NIN + NOUT; i++) {
        long n = i < NIN ? LEN_IN : LEN_OUT;
        buf[i] = aligned_alloc(64, n * sizeof(float));
        for (long j = 0; j < n; j++) {
            s = s * 1103515245u + 12345u;
            buf[i][j] = ((s >> 8) & 0xffff) / 16384.0f - 2.0f;     /* [-2, 2) */
        }
    }
    tj_mark_begin();
#ifdef TORSH
    ENTRY((void **)buf);
#elif KIND == 0
    chain_c(buf[0], buf[1], buf[2], buf[3]);
#else
    matmul_c(buf[0], buf[1], buf[2]);
#endif
    tj_mark_end();
    double sum = 0;
    for (long j = 0; j < LEN_OUT; j++) sum += buf[NIN][j];
    printf("checksum %.6g\n", sum);
    return 0;
}
"""

KERNELS_C = r"""
#include <math.h>
void chain_c(const float *restrict a, const float *restrict b, const float *restrict c, float *restrict o) {
    for (long i = 0; i < N_CHAIN; i++)
        o[i] = expf(a[i]) * b[i] + sinf(c[i]) * 0.5f - tanhf(a[i] * c[i]);
}
void matmul_c(const float *restrict a, const float *restrict b, float *restrict c) {
    for (long i = 0; i < MM; i++) {
        for (long j = 0; j < MM; j++)
            c[i * MM + j] = 0.0f;
        for (long k = 0; k < MM; k++) {
            float aik = a[i * MM + k];
            for (long j = 0; j < MM; j++)
                c[i * MM + j] += aik * b[k * MM + j];
        }
    }
}
"""


# the loop whose vectorisation matters: chain_c's, and matmul_c's innermost
_lines = KERNELS_C.splitlines()
LOOP_LINE = {"chain": 1 + _lines.index("    for (long i = 0; i < N_CHAIN; i++)"),
             "matmul": 1 + _lines.index("            for (long j = 0; j < MM; j++)")}


def chain(a, b, c):
    return np.exp(a) * b + np.sin(c) * 0.5 - np.tanh(a * c)


def matmul(a, b):
    return a @ b


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def marker_addresses(cc: str, exe: Path) -> tuple[int, int]:
    nm = cc.replace("-gcc", "-nm")
    syms = dict(line.split()[2::-2] for line in run([nm, str(exe)]).stdout.splitlines()
                if len(line.split()) == 3)
    return int(syms["tj_mark_begin"], 16), int(syms["tj_mark_end"], 16)


def count(target, vlen, exe: Path, cc: str, log: Path) -> int:
    """Instructions executed between the driver's two marker calls, from qemu's logs."""
    begin, end = marker_addresses(cc, exe)
    cmd = emulator_command(target, vlen)
    run([cmd[0], "-d", "in_asm,exec,nochain", "-D", str(log)] + cmd[1:] + [str(exe)], timeout=1200)
    size: dict[int, int] = {}           # block start -> instructions in it
    total, counting, block = 0, False, None
    with open(log) as f:
        for line in f:
            if line.startswith("IN:"):
                block = None
            elif line.startswith("0x") and ":" in line:
                pc = int(line.split(":", 1)[0], 16)
                if block is None:
                    block = pc
                    size[block] = 0
                size[block] += 1
            elif line.startswith("Trace"):
                block = None
                pc = int(line.split("[", 1)[1].split("/")[1], 16)
                if pc == end:
                    counting = False
                elif counting:
                    total += size[pc]
                elif pc == begin:
                    counting = True
    log.unlink()
    if not total:
        raise RuntimeError(f"no instructions counted between the markers of {exe}")
    return total


def torsh_object(fn, args, target) -> tuple[bytes, str]:
    low = tj.kernel(fn).lower(*args, target=target)
    assert not low.plan.part.buffers.temps, "the driver passes inputs and one output only"
    return build_object(low.source, low.target, jit=False), f"{low.plan.module_name}_main"


def measure(label, tname, vlen, march, work: Path) -> dict:
    t = tj.parse_target(tname)
    cc = t.cc
    defs = [f"-DN_CHAIN={N_CHAIN}", f"-DMM={MM}"]
    out = {"config": label, "target": tname, "vector_length": vlen}
    f32 = np.float32
    for kind, (fn, args, per) in enumerate([
            (chain, (np.zeros(N_CHAIN, f32),) * 3, N_CHAIN),
            (matmul, (np.zeros((MM, MM), f32),) * 2, MM ** 3)]):
        name = ("chain", "matmul")[kind]
        stem = work / f"{tname}-{name}"
        # torsh-jit
        obj, entry = torsh_object(fn, args, tname)
        stem.with_suffix(".tj.o").write_bytes(obj)
        tj_exe = stem.with_suffix(".tj.exe")
        run([cc, "-O2", "-static", "-no-pie", *defs, f"-DKIND={kind}", "-DTORSH", f"-DENTRY={entry}",
             "-o", tj_exe, work / "driver.c", stem.with_suffix(".tj.o"), "-lm"])
        # gcc
        rep = run([cc, "-O3", "-ffast-math", f"-march={march}", *defs, "-fopt-info-vec-optimized",
                   "-c", "-o", stem.with_suffix(".c.o"), work / "kernels.c"])
        vectorised = [ln for ln in rep.stderr.splitlines() if "vectorized" in ln]
        vec = any(f"kernels.c:{LOOP_LINE[name]}:" in ln for ln in vectorised)
        c_exe = stem.with_suffix(".c.exe")
        run([cc, "-O2", "-static", "-no-pie", *defs, f"-DKIND={kind}", "-o", c_exe, work / "driver.c",
             stem.with_suffix(".c.o"), "-lm"])
        n_tj = count(t, vlen, tj_exe, cc, work / "qemu.log")
        n_c = count(t, vlen, c_exe, cc, work / "qemu.log")
        out[name] = {"torsh_jit": n_tj / per, "gcc": n_c / per, "ratio": n_tj / n_c,
                     "gcc_vectorised": vec}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write the results here")
    ns = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tj-emulated-") as tmp:
        work = Path(tmp)
        (work / "driver.c").write_text(DRIVER_C)
        (work / "kernels.c").write_text(KERNELS_C)
        for label, tname, vlen, march in CONFIGS:
            t = tj.parse_target(tname)
            if not available(t):
                print(f"{label}: skipped, {why_missing(t)}")
                continue
            rows.append(measure(label, tname, vlen, march, work))
    print(f"instructions executed (qemu -d in_asm,exec counts), chain per element (n={N_CHAIN}), "
          f"matmul per multiply-add ({MM}^3)")
    print(f"{'config':<22} {'chain tj':>9} {'gcc':>9} {'ratio':>6}  {'matmul tj':>9} {'gcc':>9} {'ratio':>6}")
    for r in rows:
        c, m = r["chain"], r["matmul"]
        cv = "" if c["gcc_vectorised"] else "*"
        mv = "" if m["gcc_vectorised"] else "*"
        print(f"{r['config']:<22} {c['torsh_jit']:>9.2f} {c['gcc']:>8.2f}{cv:1} {c['ratio']:>6.2f}  "
              f"{m['torsh_jit']:>9.3f} {m['gcc']:>8.3f}{mv:1} {m['ratio']:>6.2f}")
    print("ratio = torsh-jit / gcc -O3 -ffast-math (below 1: fewer instructions); "
          "* gcc did not vectorise that loop")
    if ns.json:
        Path(ns.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
