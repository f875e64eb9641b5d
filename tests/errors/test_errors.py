"""Must-fail programs: every other .py file in this folder is one user mistake.

Each program starts with `# expect: <ErrorClass>: <part of the message>` and defines
`run()`. The line that should be blamed ends with `# <- error`; the message must name
that file and line. Every error must say what to do instead (a hint).

Adding a case is adding a file; nothing here lists them.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import torsh_jit as tj

HERE = Path(__file__).resolve().parent
PROGRAMS = sorted(p for p in HERE.glob("*.py") if not p.name.startswith(("test_", "conftest", "_")))
HEADER = re.compile(r"^# expect: (\w+): (.+)$")


def _expectation(path: Path):
    lines = path.read_text().splitlines()
    m = HEADER.match(lines[0]) if lines else None
    assert m, f"{path.name}: first line must be '# expect: <ErrorClass>: <message part>'"
    blamed = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith("# <- error")]
    return m.group(1), m.group(2).strip(), blamed


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"tj_error_case_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_folder_has_the_cases():
    names = {p.stem for p in PROGRAMS}
    assert len(names) >= 15, names


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_program_fails_with_a_helpful_error(path):
    cls_name, part, blamed = _expectation(path)
    cls = getattr(tj, cls_name)
    assert issubclass(cls, tj.TorshJitError), f"{cls_name} is not a TorshJitError"
    mod = _load(path)
    with pytest.raises(tj.TorshJitError) as ei:
        mod.run()
    err = ei.value
    text = str(err)
    assert type(err) is cls, f"raised {type(err).__name__}, expected {cls_name}: {text}"
    assert not isinstance(err, tj.InternalError)
    assert part in text, f"{part!r} not in the message:\n{text}"
    for line in blamed:
        assert f"{path}:{line}" in text, f"the message does not point at {path.name}:{line}:\n{text}"
    assert err.hint and "hint:" in text, f"no hint on what to do instead:\n{text}"
    # the error is raised once, cleanly: no chained internal exception to read through
    assert err.__cause__ is None or isinstance(err.__cause__, tj.TorshJitError)


def test_errors_are_raised_again_on_the_next_call():
    """A failed specialisation is not cached as a success."""
    mod = _load(HERE / "shapes_do_not_broadcast.py")
    for _ in range(2):
        with pytest.raises(tj.ShapeError):
            mod.run()
