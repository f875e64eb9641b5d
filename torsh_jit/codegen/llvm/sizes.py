"""Symbolic sizes in LLVM IR: each Sym a kernel uses becomes an SSA value computed at the
top of the function from the size table, the buffer after the last temporary (one i64 per
symbol, in the plan's symbol order).

While a module renders, `str(sym)` (an f-string or `{{ sym }}` in a template) spells the
value `%szN`; `define_sizes` then gives every function that names one the instructions
that compute it, right after its entry label, so the value dominates every use.
"""
from __future__ import annotations

import contextlib
import re

from ...ir.symbols import Sym, rendering

_USE = re.compile(r"%sz(\d+)\b")


class SizeValues:
    """The Syms of one module and their SSA names."""

    def __init__(self, symbols: tuple[str, ...], table_slot: int):
        self.symbols = symbols
        self.slot = table_slot
        self.names: dict = {}        # Sym terms -> index
        self.exprs: list[Sym] = []

    def spell(self, s: Sym) -> str:
        i = self.names.get(s.terms)
        if i is None:
            for m, _ in s.terms:          # the inner expressions of floor divisions, first
                for a in m:
                    if not isinstance(a, str):
                        self.spell(a[1])
            i = self.names[s.terms] = len(self.exprs)
            self.exprs.append(s)
        return f"%sz{i}"

    @contextlib.contextmanager
    def active(self):
        with rendering(self.spell):
            yield self

    def _compute(self, i: int, out: list[str]) -> None:
        s = self.exprs[i]
        total = None
        for t, (m, c) in enumerate(s.terms):
            v = None
            for j, a in enumerate(m):
                if isinstance(a, str):
                    f = f"%szs.{a}"
                else:
                    f = f"%sz{i}.a{t}.{j}"
                    self._floor(out, f, a[0], f"%sz{self.names[a[1].terms]}", a[2])
                if v is None:
                    v = f
                else:
                    n = f"%sz{i}.m{t}.{j}"
                    out.append(f"  {n} = mul i64 {v}, {f}")
                    v = n
            if v is None:
                v = str(c)
            elif c != 1:
                n = f"%sz{i}.c{t}"
                out.append(f"  {n} = mul i64 {v}, {c}")
                v = n
            if total is None:
                total = v
            else:
                n = f"%sz{i}.s{t}"
                out.append(f"  {n} = add i64 {total}, {v}")
                total = n
        out.append(f"  %sz{i} = add i64 0, {total}")

    @staticmethod
    def _floor(out: list[str], name: str, op: str, x: str, d: int) -> None:
        """name = x // d or x % d with Python's floor semantics (x may be negative, d > 0)."""
        out.append(f"  {name}.q = sdiv i64 {x}, {d}")
        out.append(f"  {name}.r = srem i64 {x}, {d}")
        out.append(f"  {name}.n = icmp slt i64 {name}.r, 0")
        if op == "//":
            out.append(f"  {name}.f = sext i1 {name}.n to i64")
            out.append(f"  {name} = add i64 {name}.q, {name}.f")
        else:
            out.append(f"  {name}.f = select i1 {name}.n, i64 {d}, i64 0")
            out.append(f"  {name} = add i64 {name}.r, {name}.f")

    def definitions(self, used: set[int]) -> list[str]:
        """The instructions that compute the values `used` (and what they depend on)."""
        need: set[int] = set()

        def close(i):
            if i in need:
                return
            need.add(i)
            for m, _ in self.exprs[i].terms:
                for a in m:
                    if not isinstance(a, str):
                        close(self.names[a[1].terms])
        for i in used:
            close(i)
        out = [f"  %szt.p = getelementptr ptr, ptr %args, i64 {self.slot}",
               "  %szt = load ptr, ptr %szt.p"]
        for k, name in enumerate(self.symbols):
            out.append(f"  %szs.{name}.p = getelementptr i64, ptr %szt, i64 {k}")
            out.append(f"  %szs.{name} = load i64, ptr %szs.{name}.p")
        for i in sorted(need):         # an expression's inner values have lower indices
            self._compute(i, out)
        return out

    def define_sizes(self, text: str) -> str:
        """Insert, after each function's entry label, the sizes that function uses."""
        if not self.exprs:
            return text
        out: list[str] = []
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            line = lines[i]
            out.append(line)
            if line.startswith("define ") and line.rstrip().endswith("{"):
                j = i + 1
                body = []
                while j < len(lines) and lines[j] != "}":
                    body.append(lines[j])
                    j += 1
                used = {int(u) for b in body for u in _USE.findall(b)}
                if used:
                    k = next(n for n, b in enumerate(body) if b.strip().endswith(":"))
                    body[k + 1:k + 1] = self.definitions(used)
                out.extend(body)
                i = j
                continue
            i += 1
        return "\n".join(out)
