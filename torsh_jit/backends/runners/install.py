"""`torsh-jit runners --install`: install what the emulated targets need, only what is missing.

Debian packages through apt-get (as root, or through sudo), after `apt-get update`, and only
when one is missing; Python packages through pip. A command older than a target's
`min_version` (Debian 12's qemu-user 7.2 for riscv64-rvv) is upgraded from the release's
backports suite, which this adds to apt's sources (printing so) when it is not there.
What cannot be installed here (no apt-get, no root) is printed with the command to run.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ... import errors as E
from . import all_missing, too_old, why_missing

BACKPORTS_LIST = Path("/etc/apt/sources.list.d/torsh-jit-backports.list")


def _debian_codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return ""
    info = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if info.get("ID", "").strip('"') != "debian":
        return ""
    return info.get("VERSION_CODENAME", "").strip('"')


def _apt(sudo: list[str], args: list[str], progress) -> None:
    cmd = sudo + ["apt-get"] + args
    r = subprocess.run(cmd, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise E.RunnerError(f"`{' '.join(cmd)}` failed:\n{r.stderr.strip()[-2000:]}",
                            hint="install the packages by hand (see `torsh-jit runners`)")


def _backports(sudo: list[str], packages: list[str], progress) -> None:
    codename = _debian_codename()
    if not codename:
        progress("torsh-jit runners: install a newer " + " ".join(packages) + " (not Debian: no "
                 "backports suite to take it from)")
        return
    suite = f"{codename}-backports"
    listed = any(suite in f.read_text(errors="replace")
                 for f in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
                 if f.is_file())
    if not listed:
        progress(f"torsh-jit runners: adding {suite} to apt's sources ({BACKPORTS_LIST})")
        line = f"deb http://deb.debian.org/debian {suite} main\n"
        if sudo:
            subprocess.run(sudo + ["tee", str(BACKPORTS_LIST)], input=line, text=True,
                           stdout=subprocess.DEVNULL, check=True)
        else:
            BACKPORTS_LIST.write_text(line)
    progress(f"torsh-jit runners: apt-get install -t {suite} " + " ".join(packages))
    _apt(sudo, ["update", "-q"], progress)
    _apt(sudo, ["install", "-y", "-q", "-t", suite] + packages, progress)


def install(progress=print) -> list[str]:
    """Install what every target's runner needs (apt-get for Debian packages, pip for Python
    ones), only what is missing; apt-get runs only when a Debian package is missing, after
    `apt-get update`, as root or through sudo. What cannot be installed here (no apt-get, no
    root) is printed with the command to run. Returns the targets still lacking something;
    raises RunnerError when an install command fails."""
    from ...target import known_targets
    needs = [n for miss in all_missing().values() for n in miss]
    deb = sorted({n["debian"] for n in needs if "debian" in n})
    pip = sorted({n["pip"] for n in needs if "pip" in n})
    if not deb and not pip:
        progress("torsh-jit runners: every target's runner is installed")
        return []
    if deb:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        if shutil.which("apt-get") is None:
            progress("torsh-jit runners: no apt-get here; install the equivalents of these Debian "
                     "packages: " + " ".join(deb))
        elif sudo and shutil.which("sudo") is None:
            progress("torsh-jit runners: not root and no sudo; as root run: apt-get update && "
                     "apt-get install -y " + " ".join(deb))
        else:
            progress("torsh-jit runners: apt-get install " + " ".join(deb))
            _apt(sudo, ["update", "-q"], progress)
            _apt(sudo, ["install", "-y", "-q"] + deb, progress)
            old = sorted({n["debian"] for miss in all_missing().values() for n in miss
                          if "debian" in n and too_old(n)})
            if old:
                _backports(sudo, old, progress)
    if pip:
        progress("torsh-jit runners: pip install " + " ".join(pip))
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q"] + pip,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise E.RunnerError(f"pip install {' '.join(pip)} failed:\n{r.stderr.strip()[-2000:]}")
        importlib.invalidate_caches()
    left = sorted(all_missing())
    for name in left:
        progress(f"torsh-jit runners: {name} still lacks: {why_missing(known_targets()[name])}")
    return left
