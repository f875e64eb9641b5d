"""Shared test setup.

Every test session compiles into its own empty cache directory, so results never come
from artifacts a previous (possibly older) build left behind, and the user's cache is
never touched. Set at import, before any test asks for the cache.

Random data: tests draw from `rng`, seeded per test from one session seed. The seed is
printed in the header; TORSH_JIT_TEST_SEED=<n> replays a failing run.
"""
from __future__ import annotations

import os
import tempfile
import zlib

import numpy as np
import pytest

os.environ["TORSH_JIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="torsh-jit-test-cache-")
# subprocesses the tests start import the installed torsh_jit too, not the checkout their
# working directory may be (python -c and -m put it first on sys.path; Python >= 3.11)
os.environ["PYTHONSAFEPATH"] = "1"
os.environ.pop("TORSH_JIT_CACHE", None)

SEED = int(os.environ.get("TORSH_JIT_TEST_SEED") or np.random.SeedSequence().entropy % (1 << 32))


def pytest_report_header(config):
    return [f"torsh-jit: TORSH_JIT_TEST_SEED={SEED}, cache dir {os.environ['TORSH_JIT_CACHE_DIR']}"]


def pytest_terminal_summary(terminalreporter):
    """Say, even under -q, which targets this machine cannot execute at all (no runner
    exists for them here: AVX-512 code on a CPU without it). Their code is still built and
    their instructions checked; only running them is left out."""
    from torsh_jit.runtime.hardware import lacking_hardware
    lacking = lacking_hardware()
    if lacking:
        terminalreporter.write_line("torsh-jit: NOT EXECUTED on this machine (built and "
                                    "instruction-checked only): "
                                    + "; ".join(f"{t}: {why}" for t, why in lacking))


@pytest.fixture
def rng(request):
    """A generator seeded from the session seed and the test's id (fresh data every run)."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that drew random data says how to replay it (-q hides the header)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "rng" in getattr(item, "fixturenames", ()):
        rep.sections.append(("random data", f"replay with TORSH_JIT_TEST_SEED={SEED}"))


def pytest_sessionstart(session):
    """With TORSH_JIT_REQUIRE_RUNNERS=1 (CI), a target that cannot run here fails the run."""
    if os.environ.get("TORSH_JIT_REQUIRE_RUNNERS") != "1":
        return
    from torsh_jit.runtime.hardware import missing_runners
    missing = missing_runners()
    if missing:
        raise pytest.UsageError("TORSH_JIT_REQUIRE_RUNNERS=1 and these targets cannot run here: "
                                + "; ".join(f"{t}: {why}" for t, why in missing))
