"""The Store contract (torsh_jit/cache/protocol.py), checked the same way against every store:
the directory store, the null store, and Redis (a real redis-server, started by the fixture
of test_remote_cache.py). Payloads are fresh random bytes each run."""
from __future__ import annotations

import pytest
from test_remote_cache import server  # noqa: F401  (the redis-server fixture)

from cache_format import entry_meta
from torsh_jit.cache import DirectoryStore, NullStore, Store, make_key
from torsh_jit.cache.remote import RedisStore, entry_name


class Stored:
    """One store under test, and how to reach its bytes behind its back."""

    def __init__(self, store, read, write):
        self.store, self.read, self.write = store, read, write


def directory(tmp_path, request) -> Stored:
    s = DirectoryStore(tmp_path / "d")
    return Stored(s, lambda k, key: s.path(k, key).read_bytes(),
                  lambda k, key, b: s.path(k, key).write_bytes(b))


def redis_store(tmp_path, request) -> Stored:
    srv = request.getfixturevalue("server")
    s = RedisStore(srv.url)
    return Stored(s, lambda k, key: srv.client.get(entry_name(1, k, key)),
                  lambda k, key, b: srv.client.set(entry_name(1, k, key), b))


STORES = {"directory": directory, "redis": redis_store}


@pytest.fixture(params=sorted(STORES))
def stored(request, tmp_path) -> Stored:
    return STORES[request.param](tmp_path, request)


def test_round_trip_delete_and_keys(stored, rng):
    s = stored.store
    assert isinstance(s, Store)
    a, b = make_key({"store": rng.bytes(8).hex()}), make_key({"store": rng.bytes(8).hex()})
    pa, pb = rng.bytes(int(rng.integers(1, 5000))), rng.bytes(int(rng.integers(1, 5000)))
    assert s.get("kernel", a) is None and s.keys("kernel") == []
    s.put("kernel", a, pa, {"note": "é"})
    s.put("kernel", b, pb)
    s.put("tuning", a, b"{}")
    payload, meta = s.get_entry("kernel", a)
    assert payload == pa and meta["kind"] == "kernel" and meta["key"] == a and meta["note"] == "é"
    assert s.get("kernel", b) == pb
    assert entry_meta(stored.read("kernel", a)) == meta          # the bytes are FORMAT.md's
    assert s.keys("kernel") == sorted([a, b]) and s.keys("tuning") == [a]
    assert s.info()["entries"] >= 2
    assert s.delete("kernel", a) is True and s.delete("kernel", a) is False
    assert s.get("kernel", a) is None and s.keys("kernel") == [b]
    assert s.get("tuning", a) == b"{}"                                  # kinds are separate
    assert s.stats["hits"] >= 3 and s.stats["writes"] >= 3
    with pytest.raises(ValueError):
        s.put("../x", a, b"x")
    with pytest.raises(TypeError):
        s.put("kernel", a, "a str")


def test_a_corrupted_entry_is_a_miss(stored, rng):
    s = stored.store
    key = make_key({"corrupt": rng.bytes(8).hex()})
    s.put("kernel", key, rng.bytes(300))
    data = bytearray(stored.read("kernel", key))
    data[-1 - int(rng.integers(0, 300))] ^= 0x5A                       # a payload byte
    stored.write("kernel", key, bytes(data))
    assert s.get("kernel", key) is None
    assert s.stats["corrupt"] >= 1


def test_an_expect_mismatch_is_a_miss(stored, rng):
    s = stored.store
    key = make_key({"expect": rng.bytes(8).hex()})
    payload = rng.bytes(100)
    s.put("obj", key, payload, {"plan": "a"})
    assert s.get("obj", key, expect={"plan": "b"}) is None
    assert s.get("obj", key, expect={"other": 1}) is None
    assert s.get("obj", key, expect={"plan": "a"}) == payload
    assert s.stats["mismatched"] >= 2


def test_the_null_store_misses_always(rng):
    s = NullStore()
    assert isinstance(s, Store)
    key = make_key({"null": rng.bytes(8).hex()})
    s.put("kernel", key, rng.bytes(10))
    assert s.get("kernel", key) is None and s.get_entry("kernel", key) is None
    assert s.keys("kernel") == [] and s.delete("kernel", key) is False
    assert s.info()["entries"] == 0 and s.prune(max_bytes=0) == 0 and s.clear() == 0
    with s.lock("kernel", key) as held:
        assert held is False
    assert s.stats["misses"] == 2
    with pytest.raises(ValueError):
        s.get("kernel", "../x")


def test_redis_prune_and_clear_touch_only_entries(server, rng):  # noqa: F811
    s = RedisStore(server.url)
    key = make_key({"prune": rng.bytes(8).hex()})
    s.put("kernel", key, b"x")
    server.client.set("torsh-jit:v0:kernel:" + key, b"old")
    server.client.set("someone-else", b"theirs")
    assert s.prune() == 1 and s.keys("kernel") == [key]
    assert s.clear() == 1 and s.keys("kernel") == []
    assert server.client.get("someone-else") == b"theirs"
