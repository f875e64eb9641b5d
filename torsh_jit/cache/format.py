"""The bytes of one cache entry (specified in cache/FORMAT.md): a 56-byte header (magic,
format version, lengths, sha256 of the rest), the meta as JSON, then the opaque payload.

`encode_entry` and `read_entry` are pure (bytes in, bytes out): one writes an entry, the
other verifies one (magic, version, lengths, checksum, JSON meta naming the expected kind
and key); `header_ok` judges a file from its header alone. Nothing is ever unpickled or
evaluated.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

FORMAT_VERSION: int = 1

MAGIC = b"TJCACHE\0"
# magic, format version (u32), meta length (u32), payload length (u64), sha256(meta + payload).
# Little endian, no padding ("<"), so the header is exactly 56 bytes on every platform.
_HEADER = struct.Struct("<8sIIQ32s")
# The first 12 bytes (magic + version) are common to every format version, v0 included, so a
# reader can tell "another version" from "garbage" before it knows the rest of the layout.
_PREFIX = struct.Struct("<8sI")


class BadEntry(Exception):
    """The bytes are not a readable entry of this format version (the reason is the message)."""


class ForeignVersion(BadEntry):
    """Well-formed magic, but another format version: not ours to judge or delete."""


def encode_entry(meta: dict, payload: bytes) -> bytes:
    """The bytes of one entry file. Meta is written as compact, key-sorted UTF-8 JSON so that
    the same (meta, payload) always gives the same bytes (the fixtures check this)."""
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False).encode("utf-8")
    digest = hashlib.sha256(meta_bytes + payload).digest()
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(meta_bytes), len(payload), digest)
    return header + meta_bytes + payload


def decode_entry(data: bytes) -> tuple[dict, bytes]:
    """(meta, payload) of an entry's bytes; raises ForeignVersion or BadEntry."""
    if len(data) < _PREFIX.size:
        raise BadEntry(f"truncated: {len(data)} bytes, shorter than magic and version")
    magic, version = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise BadEntry(f"bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise ForeignVersion(f"format version {version}, this reader knows {FORMAT_VERSION}")
    if len(data) < _HEADER.size:
        raise BadEntry(f"truncated: {len(data)} bytes, shorter than the {_HEADER.size}-byte header")
    _, _, meta_len, payload_len, digest = _HEADER.unpack_from(data)
    if _HEADER.size + meta_len + payload_len != len(data):
        raise BadEntry(f"lengths say {_HEADER.size + meta_len + payload_len} bytes, "
                        f"file has {len(data)}")
    body = memoryview(data)[_HEADER.size:]
    if hashlib.sha256(body).digest() != digest:
        raise BadEntry("checksum mismatch")
    try:
        meta = json.loads(bytes(body[:meta_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadEntry(f"meta is not UTF-8 JSON: {e}") from None
    if type(meta) is not dict:
        raise BadEntry(f"meta is a JSON {type(meta).__name__}, not an object")
    return meta, bytes(body[meta_len:])


def read_entry(data: bytes, kind: str, key: str) -> tuple[dict, bytes]:
    """(meta, payload) of the entry stored as (kind, key): decode_entry, and the meta must
    name that kind and key (a file copied or renamed to another key is not its entry)."""
    meta, payload = decode_entry(data)
    if meta.get("kind") != kind or meta.get("key") != key:
        raise BadEntry(f"meta names {meta.get('kind')!r}/{meta.get('key')!r}")
    return meta, payload


def header_ok(path: Path, st: os.stat_result) -> bool:
    """Magic, version and lengths agree with the file size (no checksum: that needs the
    whole file, and get() catches it on the next read anyway)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER.size)
    except OSError:
        return True     # unreadable now is not proof of corruption; leave it
    if len(head) < _HEADER.size:
        return False
    magic, version, meta_len, payload_len, _ = _HEADER.unpack(head)
    return (magic == MAGIC and version == FORMAT_VERSION
            and _HEADER.size + meta_len + payload_len == st.st_size)
