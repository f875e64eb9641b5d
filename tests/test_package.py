"""The tests run against the installed package, and the installed package is the whole tree.

CI installs the wheel (`pip install '.[test]'`) and runs `.venv/bin/pytest`, which does not
put the checkout on sys.path: `import torsh_jit` is the wheel's. A module of the tree that
the wheel leaves out then fails here, by name, instead of passing because the source tree
was imported in its place.
"""
from __future__ import annotations

import importlib
import json
import os
from importlib import metadata
from pathlib import Path

import torsh_jit

TREE = Path(__file__).resolve().parents[1] / "torsh_jit"


def _editable() -> bool:
    """A development install (pip install -e): the package is the tree, by design."""
    try:
        text = metadata.distribution("torsh-jit").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return False
    return bool(text) and json.loads(text).get("dir_info", {}).get("editable", False)


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
    assert "torsh_jit.tune" in names and "torsh_jit.runtime.runners.qemu" in names
    missing = []
    for name in names:
        try:
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
    runners = Path(torsh_jit.__file__).parent / "runtime" / "runners"
    for f in ("harness.c", "msl_threads.cpp", os.path.join("msl_shim", "metal_stdlib")):
        assert (runners / f).is_file(), f
