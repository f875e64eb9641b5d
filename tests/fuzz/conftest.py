"""Hypothesis profiles for the differential fuzzer, its seed, and its end-of-session counts.

Profiles (`python -m pytest tests/fuzz --hypothesis-profile=NAME`):
  ci      the default: a bounded run (about a minute here) of fresh examples every run
  medium  ten times more on the host
  long    at least 5000 host examples, 500 on each emulated target

Every run draws new data; the seed is printed in the header and beside a failure.
TORSH_JIT_FUZZ_SEED=<n> (or hypothesis' own --hypothesis-seed=<n>) replays a run.
A failing example is also kept in hypothesis' database (.hypothesis/, ignored by git)
and tried first next time.
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_check  # noqa: E402

# examples per test, by profile: emulated targets cost a qemu start or a wgpu pipeline each
EXAMPLES = {
    "ci": {"host": 150, "host-big": 12, "aarch64-neon": 25, "wgsl": 25},
    "medium": {"host": 1000, "host-big": 40, "aarch64-neon": 100, "wgsl": 100},
    "long": {"host": 5000, "host-big": 200, "aarch64-neon": 500, "wgsl": 500},
}
_common = dict(deadline=None, derandomize=False, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                      HealthCheck.data_too_large, HealthCheck.large_base_example])
for _name, _counts in EXAMPLES.items():
    settings.register_profile(_name, max_examples=_counts["host"], **_common)


def profile_name() -> str:
    """The active fuzz profile: the one --hypothesis-profile loaded, else ci."""
    name = settings.get_current_profile_name()
    return name if name in EXAMPLES else "ci"


def fuzz_settings(kind: str) -> settings:
    name = profile_name()
    return settings(settings.get_profile(name), max_examples=EXAMPLES[name][kind])


def _seed() -> int:
    s = os.environ.get("TORSH_JIT_FUZZ_SEED")
    return int(s) if s else random.SystemRandom().randrange(2**63)


fuzz_check.SEED = _seed()


def pytest_configure(config):
    hs = config.getoption("hypothesis_seed", None)
    if hs is not None:
        fuzz_check.SEED = int(hs)


def pytest_report_header(config):
    return [f"torsh-jit fuzz: profile {profile_name()}, TORSH_JIT_FUZZ_SEED={fuzz_check.SEED}"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "fuzz" in item.nodeid:
        rep.sections.append(("fuzz seed", f"replay with TORSH_JIT_FUZZ_SEED={fuzz_check.SEED} "
                                          f"(profile {profile_name()})"))


def pytest_terminal_summary(terminalreporter):
    if not fuzz_check.STATS:
        return
    terminalreporter.write_line(f"torsh-jit fuzz (seed {fuzz_check.SEED}, profile {profile_name()}): "
                                + fuzz_check.summary())
    kinds = fuzz_check.unsupported_kinds()
    if kinds:
        terminalreporter.write_line("torsh-jit fuzz: unsupported (counted, not failed):")
        for line in kinds:
            terminalreporter.write_line("  " + line)
