"""
How a session, or an id it has moved away from, is laid out in its Redis string.

A session::

    offset  size  field
    0       1     b"s"
    1       8     tag: a keyed hash of the session's name and of bytes 27 on
    9       6     created: the session's first login, epoch ms by Redis's clock
    15      6     deadline: its absolute timeout, fixed at that login
    21      6     issued: when this id was issued (renewal runs from it)
    27      4     version: drawn anew by every write, so that a write can tell it missed one
    31      4     idle: ms each read slides the TTL back to; 0 for a fixed expiry
    35      1     flags: bit 0, the data is compressed; bit 1, its auth hash is lifted
    36      ...   the user id, the IP and the User-Agent recorded at login, and the
                  name of the id this one replaced, each after its length (1, 1,
                  2 and 1 bytes); with bit 1, where Django's session auth hash
                  stood in the data (2 bytes) and the hash as 32 bytes; then
                  the data: the session's keys and values in SESSION_SERIALIZER's
                  JSON, less a lifted hash's 64 hex digits, compressed with a
                  dictionary of the words sessions share when that makes it
                  shorter.

The times are Redis's clock's (written by the scripts, or for a new session
by clock.py's reading of it), and are not covered by the tag; everything else is, so a value copied to another session's key or
edited in Redis fails its check.

An id in its renewal grace period (a *stub*)::

    0  1  b"t"
    1  6  until: when the grace period ends (Redis's clock)
    7  .. the owner's id after its length (1 byte), the new id's name (NAME_LENGTH
          bytes), then the new id sealed under the old one (keys.seal_successor).
"""

import dataclasses
import hmac
import struct
import threading

import zstandard

from .keys import NAME_LENGTH, value_tag

SESSION = b"s"
STUB = b"t"

TIMES = struct.Struct(">6s6s6s")
# The times as two integers each (struct has no 6-byte one): high 16 bits, low 32.
FIXED = struct.Struct(">1s8sHIHIHIIIB")
TAGGED_FROM = 27  # the version and what follows it
OWNER_AT = FIXED.size  # a session's owner: its length, then itself (a stub's comes earlier)
COMPRESSED = 1
# Django's session auth hash (64 hex digits of an HMAC, in every logged-in
# session) is stored as its 32 bytes: compressed, its digits would take 48.
LIFTED_HASH = 2
HASH_FIELD = b'"_auth_user_hash":"'
HASH_DIGITS = 64
LIFT = struct.Struct(">H32s")

# What many sessions say: Django's auth keys and backend, this engine's own
# keys. Zstandard reads it as a dictionary of earlier text to refer back to.
DICTIONARY = (
    b'{"_auth_user_id":"1","_auth_user_backend":"django.contrib.auth.backends.ModelBackend",'
    b'"_auth_user_hash":"0123456789abcdef","_session_expiry":"2026-12-01T00:00:00+00:00",'
    b'"_accounts_authenticated_at":1796165069,"_password_reset_token":"","_auth_user_backend":'
    b'"accounts.backends.ThrottledModelBackend","django.contrib.sessions.backends":null,true,'
    b'false,[],{},":"","":[{"'
)


@dataclasses.dataclass(slots=True)
class Value:
    """A session as stored: its times and owner, who uses it, and its serialized data."""

    data: bytes
    user_id: str = ""
    ip: str = ""
    user_agent: str = ""
    previous: str = ""
    version: int = 0
    idle_ms: int = 0
    created_ms: int = 0
    deadline_ms: int = 0
    issued_ms: int = 0
    # Not stored: the session's name, and Redis's time when it was read.
    name: str = ""
    now_ms: int = 0


@dataclasses.dataclass(slots=True)
class Stub:
    """An id in its renewal grace period: where the session went, and for how long it leads there."""

    until_ms: int
    user_id: str
    moved_to: str
    sealed: bytes


def encode(name, value):
    """
    Return ``value`` as two byte strings around its times: the kind and tag, and the rest.

    The scripts put the times between them; encode_times() gives them for a
    value written whole.
    """
    data, lifted = _lifted(value.data)
    flags = LIFTED_HASH if lifted else 0
    compressed = _codec().compressor.compress(data)
    if len(compressed) < len(data):
        data, flags = compressed, flags | COMPRESSED
    ip = value.ip.encode()[:255]
    agent = value.user_agent.encode(errors="replace")[:65535]
    tail = b"".join(
        [
            struct.pack(">IIB", value.version, value.idle_ms, flags),
            _short(value.user_id.encode()),
            _short(ip),
            struct.pack(">H", len(agent)),
            agent,
            _short(value.previous.encode()),
            lifted,
            data,
        ]
    )
    return SESSION + value_tag(name, tail), tail


def encode_times(value):
    """Return the times of ``value``, as they sit between encode()'s two parts."""
    return TIMES.pack(*(ms.to_bytes(6, "big") for ms in (value.created_ms, value.deadline_ms, value.issued_ms)))


def decode(name, raw):
    """Return the Value held in ``raw`` under ``name``; raise ValueError if it is corrupt or forged."""
    if raw[:1] != SESSION or len(raw) < FIXED.size + 5:
        raise ValueError("Not a session.")
    if not hmac.compare_digest(raw[1:9], value_tag(name, memoryview(raw)[TAGGED_FROM:])):
        raise ValueError("The value fails its tag: copied from another session, or edited.")
    (_, _, created_high, created_low, deadline_high, deadline_low, issued_high, issued_low,
     version, idle_ms, flags) = FIXED.unpack_from(raw)
    user_id_end = FIXED.size + 1 + raw[FIXED.size]
    ip_end = user_id_end + 1 + raw[user_id_end]
    agent_end = ip_end + 2 + (raw[ip_end] << 8 | raw[ip_end + 1])
    previous_end = data_at = agent_end + 1 + raw[agent_end]
    if flags & LIFTED_HASH:
        data_at += LIFT.size
    data = raw[data_at:]
    if flags & COMPRESSED:
        data = _codec().decompressor.decompress(data)
    if flags & LIFTED_HASH:
        at, digest = LIFT.unpack_from(raw, previous_end)
        data = data[:at] + digest.hex().encode() + data[at:]
    return Value(
        data,
        raw[FIXED.size + 1 : user_id_end].decode(),
        raw[user_id_end + 1 : ip_end].decode(errors="replace"),
        raw[ip_end + 2 : agent_end].decode(errors="replace"),
        raw[agent_end + 1 : previous_end].decode(),
        version,
        idle_ms,
        created_high << 32 | created_low,
        deadline_high << 32 | deadline_low,
        issued_high << 32 | issued_low,
    )


def data_offset(raw):
    """Return where the data of the session value ``raw`` begins."""
    position = FIXED.size
    position += 1 + raw[position]  # user id
    position += 1 + raw[position]  # IP
    position += 2 + int.from_bytes(raw[position : position + 2], "big")  # User-Agent
    position += 1 + raw[position]  # the id it replaced
    return position + (LIFT.size if raw[FIXED.size - 1] & LIFTED_HASH else 0)


def decode_stub(raw):
    """Return the Stub held in ``raw``, or None if ``raw`` is not one."""
    if raw[:1] != STUB or len(raw) < 8:
        return None
    until = int.from_bytes(raw[1:7], "big")
    user_id, position = _read_short(raw, 7)
    moved_to = raw[position : position + NAME_LENGTH].decode(errors="replace")
    return Stub(until, user_id.decode(errors="replace"), moved_to, raw[position + NAME_LENGTH :])


def header(raw):
    """Return (kind, user id, created ms) of a stored value, without checking or decoding its data."""
    if raw[:1] == STUB:
        stub = decode_stub(raw)
        return STUB, stub.user_id, 0
    if raw[:1] != SESSION or len(raw) < FIXED.size + 1:
        return None, "", 0
    user_id, _ = _read_short(raw, FIXED.size)
    return SESSION, user_id.decode(errors="replace"), int.from_bytes(raw[9:15], "big")


def _lifted(data):
    """Return ``data`` less its auth hash's digits, and where they stood with the hash's bytes (or b"")."""
    at = data.find(HASH_FIELD) + len(HASH_FIELD)
    digits = data[at : at + HASH_DIGITS]
    if at < len(HASH_FIELD) or at > 0xFFFF or data[at + HASH_DIGITS : at + HASH_DIGITS + 1] != b'"':
        return data, b""
    try:
        digest = bytes.fromhex(digits.decode("ascii"))
    except ValueError:
        return data, b""
    if len(digest) != 32 or digest.hex().encode() != digits:  # lower-case digits only: they come back so
        return data, b""
    return data[:at] + data[at + HASH_DIGITS :], LIFT.pack(at, digest)


def _short(data):
    return bytes([len(data)]) + data


def _read_short(raw, position):
    length = raw[position]
    return raw[position + 1 : position + 1 + length], position + 1 + length


class _Codec(threading.local):
    # Zstandard's compressors are not safe to share between threads.
    def __init__(self):
        dictionary = zstandard.ZstdCompressionDict(DICTIONARY, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        self.compressor = zstandard.ZstdCompressor(
            # Level 4: a few bytes fewer than 1 for session-sized data, at a
            # few microseconds more per write.
            level=4, dict_data=dictionary, write_checksum=False, write_dict_id=False
        )
        self.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)


_codecs = _Codec()


def _codec():
    return _codecs
