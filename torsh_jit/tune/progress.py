"""A progress bar on stderr, with no dependency: redrawn in place on a terminal, a line
every tenth of the way (and at the end) otherwise, nothing when turned off."""
from __future__ import annotations

import math
import sys
import time


class Progress:
    def __init__(self, total: int, label: str = "tuning", *, enabled: bool = True, stream=None):
        self.total = max(1, total)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0
        self.best = math.inf
        self.default = math.inf
        self.start = time.monotonic()
        self._last_tenth = -1

    def update(self, t: float, *, is_default: bool = False) -> None:
        self.done += 1
        if is_default:
            self.default = t
        self.best = min(self.best, t)
        self._draw(final=False)

    def line(self) -> str:
        width = 24
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        best = f"best {self.best * 1e3:.3f} ms" if math.isfinite(self.best) else "best -"
        if math.isfinite(self.best) and math.isfinite(self.default):
            best += f" ({self.default / self.best:.2f}x default)"
        return (f"{self.label} [{bar}] {self.done}/{self.total} {best} "
                f"{time.monotonic() - self.start:.1f}s")

    def _draw(self, final: bool) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
            self.stream.flush()
            return
        tenth = int(10 * self.done / self.total)
        if final or tenth != self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        self.total = max(self.total, self.done)
        self._draw(final=True)
