"""The cache's files: where its directory is, which names a kind and a key may have, and
removing what stands in their place, best effort (another process may have been first).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from pathlib import Path

import platformdirs

ENV_DIR = "TORSH_JIT_CACHE_DIR"
ENV_ENABLE = "TORSH_JIT_CACHE"
DISABLED_VALUES = {"0", "false", "off", "no"}      # TORSH_JIT_CACHE values that turn it off

SUFFIX = ".tjc"
TMP_SUFFIX = ".tmp"

# Kinds and keys become path components: restrict them so that no caller can escape the
# cache root ("..", "/") or collide with the temp and lock file names (keys have no dot).
_KIND_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{2,128}")


def default_root() -> Path:
    """The cache directory: $TORSH_JIT_CACHE_DIR, else the platform's user cache directory."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("torsh-jit"))


def check_name(kind: str, key: str) -> None:
    """ValueError unless kind and key are names the cache may turn into path components."""
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise ValueError(f"cache kind {kind!r} must match {_KIND_RE.pattern}")
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError(f"cache key {key!r} must match {_KEY_RE.pattern} (use make_key)")


def unlink(path: Path) -> bool:
    """Remove a file, best effort: another process may have removed or replaced it first."""
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def remove_in_place(path: str | os.PathLike) -> bool:
    """Remove whatever stands where one of the cache's files should be: a file, a symlink, or
    a directory (a whole tree: the name is the cache's, so nothing in it can be anyone
    else's). Best effort, for a read-only directory leaves it; True if it is gone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        return True
    except OSError:
        return False


def remove_empty_dirs(top: Path, keep_top: bool = False) -> None:
    """Remove empty directories under `top`, deepest first; non-empty ones stay (rmdir fails)."""
    if not top.is_dir():
        return
    for dirpath, _dirnames, _files in os.walk(top, topdown=False):
        if keep_top and Path(dirpath) == top:
            continue
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
