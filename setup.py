"""Package discovery (everything else is in pyproject.toml): every package under torsh_jit/
is found by setuptools, plus the two data packages that live at the repository root.

build_py also compiles the templates into Python modules, torsh_jit/_templates_py/ in the
wheel (torsh_jit/codegen/jinja_shipped.py says why: 143 ms of the first kernel a new machine
compiles), which pip byte-compiles at install like any module."""
import importlib.util
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPy(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or self.dry_run:
            return                        # an editable install compiles from the checkout
        # loaded by path: importing torsh_jit would need numpy and llvmlite to build a wheel
        path = ROOT / "torsh_jit" / "codegen" / "jinja_shipped.py"
        spec = importlib.util.spec_from_file_location("_torsh_jit_jinja_shipped", path)
        mod = importlib.util.module_from_spec(spec)
        dont, sys.dont_write_bytecode = sys.dont_write_bytecode, True   # no __pycache__ in the checkout
        try:
            spec.loader.exec_module(mod)
        finally:
            sys.dont_write_bytecode = dont
        out = Path(self.build_lib) / "torsh_jit" / mod.PACKAGE
        n = mod.write(ROOT / "templates", out)
        self.announce(f"compiled {n} templates into {out}", level=2)


setup(packages=find_packages(include=["torsh_jit", "torsh_jit.*"])
      + ["torsh_jit._templates", "torsh_jit._targets"],
      cmdclass={"build_py": BuildPy})
