"""Targets the corpus runs on: every CPU and wasm target file, the scalable ones at two
vector lengths (target_configs.py). A target that cannot run here is skipped with the
reason, or fails the test when TORSH_JIT_REQUIRE_RUNNERS=1 (CI)."""
from __future__ import annotations

import pytest

from target_configs import require_target


@pytest.fixture
def target_config(request, monkeypatch):
    """(target name, environment) with the environment applied for the test; the pairs of
    targets and cases come from test_corpus.pytest_generate_tests."""
    name, env = request.param
    require_target(name)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return name, env
