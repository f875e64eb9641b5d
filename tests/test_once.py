"""`@once`: concurrent first calls build one value; failures are not cached."""
from __future__ import annotations

import threading
import time

import pytest

from torsh_jit.once import once


def test_concurrent_first_calls_build_one_value():
    builds = []

    @once
    def thing(key, *, size=1):
        builds.append(key)
        time.sleep(0.02)        # a slow build, so the other threads arrive while it runs
        return object()

    got = []
    start = threading.Barrier(8)

    def call():
        start.wait()
        got.append(thing("a", size=2))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == ["a"] and len({id(g) for g in got}) == 1
    assert thing.built("a", size=2) and not thing.built("b")
    assert thing("b") is not got[0] and builds == ["a", "b"]
    thing.clear()
    assert not thing.built("a", size=2)


def test_a_failed_build_is_tried_again():
    calls = []

    @once
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("not yet")
        return "ok"

    with pytest.raises(OSError):
        flaky()
    assert flaky() == "ok" and flaky() == "ok" and len(calls) == 2
