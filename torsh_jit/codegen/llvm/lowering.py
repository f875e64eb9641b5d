"""Rewrites of a rendered LLVM module for what a target's instruction set lacks.

Chosen by data in the target file, never by target name; each keeps the templates and the
op table the same for every triple.

soft_fma (`fused_multiply_add = false`: wasm SIMD128, SSE4.2): LLVM lowers `llvm.fma` on
such targets to one libm `fmaf` call per lane (480 scalar calls in the exp*b+sin-tanh
chain). float32 fma becomes `tj_fma_*`, computed in float64 lanes (see
templates/llvm/soft_fma.ll.j2 for why that is exact where the vector math needs it);
float64 fma stays a libm call, there being no wider type to compute it in.
"""
from __future__ import annotations

import re

from ..jinja_env import template

_FMA32 = re.compile(r"@llvm\.fma\.(v(\d+))?f32\(")


def soft_fma(text: str) -> str:
    widths: set[int] = set()
    scalar = False

    def sub(m):
        nonlocal scalar
        if m.group(2):
            widths.add(int(m.group(2)))
            return f"@tj_fma_v{m.group(2)}f32("
        scalar = True
        return "@tj_fma_f32("
    out = _FMA32.sub(sub, text)
    if not widths and not scalar:
        return text
    return out + "\n" + template("llvm/soft_fma.ll.j2").render(widths=sorted(widths), scalar=scalar)
