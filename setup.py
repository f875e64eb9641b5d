"""Package discovery (everything else is in pyproject.toml): every package under torsh_jit/
is found by setuptools, plus the two data packages that live at the repository root."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["torsh_jit", "torsh_jit.*"])
      + ["torsh_jit._templates", "torsh_jit._targets"])
