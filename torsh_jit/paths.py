"""Where the package's data lives: templates/ and targets/, inside a wheel or beside the
package in a source checkout. A leaf: it imports nothing of torsh_jit, so version.py (the
code hash walks these directories) and target.py (the table is read from one) both can.
"""
from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """templates/ or targets/: inside the wheel (torsh_jit/_templates) or the source checkout."""
    inside = _PKG / f"_{kind}"
    if inside.is_dir():
        return inside
    return _PKG.parent / kind
