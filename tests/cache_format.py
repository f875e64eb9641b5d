"""An independent reader of a cache entry (cache/FORMAT.md), for the tests that check what
torsh-jit wrote without asking torsh-jit: the header, the lengths, the sha256."""
from __future__ import annotations

import hashlib
import json
import struct

HEADER = struct.Struct("<8sIIQ32s")


def entry_meta(data: bytes) -> dict | None:
    """The meta of a sound version-1 entry, or None."""
    if len(data) < HEADER.size:
        return None
    magic, version, meta_len, payload_len, digest = HEADER.unpack_from(data)
    if magic != b"TJCACHE\0" or version != 1 or HEADER.size + meta_len + payload_len != len(data):
        return None
    if hashlib.sha256(data[HEADER.size:]).digest() != digest:
        return None
    return json.loads(data[HEADER.size:HEADER.size + meta_len])
