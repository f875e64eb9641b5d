"""The tests run against the installed package, and the installed package is the whole tree.

CI installs the wheel (`pip install '.[test]'`) and runs `.venv/bin/pytest`, which does not
put the checkout on sys.path: `import torsh_jit` is the wheel's. A module of the tree that
the wheel leaves out then fails here, by name, instead of passing because the source tree
was imported in its place.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
from importlib import metadata
from pathlib import Path

import torsh_jit

TREE = Path(__file__).resolve().parents[1] / "torsh_jit"


def _editable() -> bool:
    """A development install (pip install -e): the package is the tree, by design. Every
    distribution of the name is asked: a checkout's build leaves a torsh_jit.egg-info that
    `python -m pytest` would find first."""
    for d in metadata.distributions(name="torsh-jit"):
        text = d.read_text("direct_url.json")
        if text and json.loads(text).get("dir_info", {}).get("editable", False):
            return True
    return False


def test_the_installed_package_is_imported_not_the_checkout():
    here = Path(torsh_jit.__file__).resolve().parent
    if _editable():
        return
    assert here != TREE, (f"torsh_jit was imported from the checkout ({here}), not from the "
                          "installed wheel: run the suite as `.venv/bin/pytest` (the README's "
                          "test command), not `python -m pytest`, which puts the checkout first")


def test_every_module_of_the_tree_imports_from_the_installed_package():
    names = []
    for path in sorted(TREE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(TREE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        names.append(".".join(parts))
    assert "torsh_jit.tune" in names and "torsh_jit.backends.runners.qemu" in names
    missing = []
    for name in names:
        try:
            if name.endswith(".__main__"):     # runs the CLI when imported: found, not run
                if importlib.util.find_spec(name) is None:
                    missing.append(f"{name}: not found")
                continue
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            missing.append(f"{name}: {e}")
    assert not missing, "modules of the tree missing from the installed package:\n" + "\n".join(missing)


def test_data_files_ship_with_the_package():
    from torsh_jit.target import data_dir
    tree_root = TREE.parent
    for kind, pattern in (("templates", "**/*.j2"), ("targets", "*.toml")):
        want = {p.relative_to(tree_root / kind).as_posix() for p in (tree_root / kind).glob(pattern)}
        have = {p.relative_to(Path(data_dir(kind))).as_posix()
                for p in Path(data_dir(kind)).glob(pattern)}
        assert want and want <= have, f"{kind} missing from the installed package: {sorted(want - have)}"
    runners = Path(torsh_jit.__file__).parent / "backends" / "runners"
    for f in ("harness.c", "msl_threads.cpp", os.path.join("msl_shim", "metal_stdlib")):
        assert (runners / f).is_file(), f


def test_subprocesses_of_the_tests_import_the_installed_package_too(tmp_path):
    """python -c / -m put their working directory first on sys.path; the tests' conftest sets
    PYTHONSAFEPATH (Python >= 3.11) so a child started from the checkout imports the wheel."""
    import subprocess
    import sys
    if sys.version_info < (3, 11) or _editable():
        return
    r = subprocess.run([sys.executable, "-c", "import torsh_jit; print(torsh_jit.__file__)"],
                       cwd=TREE.parent, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).resolve().parent != TREE
