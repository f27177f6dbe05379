"""
Session ids, and the names of the Redis keys and fields derived from them.

An id is 32 characters of ``[a-z0-9]`` (Django's format) in three parts:

- 3 characters that choose the Redis Cluster slot (hashed into the key's
  ``{tag}``). A session that moves to a new id (cycle_key(), renewal) keeps
  them, so the old and the new key share a slot and one script moves the
  session atomically.
- 25 random characters, drawn anew for every id: about 129 bits that someone
  holding an earlier id of the same session does not know (a fresh id's first
  3 are random too: about 145 bits).
- 4 characters of a keyed hash of the first 28, which let the server tell an id
  it issued from a guessed one without asking Redis.

Redis never sees an id: a session's key is a keyed hash (its *name*) of it.
"""

import base64
import hashlib
import hmac
import re
import secrets
import string

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import key_prefix

VALID_KEY_CHARS = string.ascii_lowercase + string.digits
SESSION_ID_RE = re.compile(r"[a-z0-9]{32}")
SLOT_CHARS = 3
CHECK_CHARS = 4
RANDOM_CHARS = 32 - SLOT_CHARS - CHECK_CHARS

ID_SALT = "sessiondemo.sessions.keys.id"
TAG_SALT = "sessiondemo.sessions.keys.tag"
HANDLE_SALT = "sessiondemo.sessions.keys.handle"
FIELD_SALT = "sessiondemo.sessions.keys.field"
SUCCESSOR_SALT = "sessiondemo.sessions.keys.successor"

# The length of a session's name: a 4-hex-digit slot tag and 22 characters of
# base64url, a 128-bit digest.
NAME_LENGTH = 26
TAG_BYTES = 8
# Users whose indexes share one Redis hash: a field per session and one per
# user, and Redis keeps a hash of up to 512 fields compact (a listpack) by
# default (hash-max-listpack-entries), so seven sessions each on average.
USERS_PER_BUCKET = 64


# Two base-36 digits at a time, least significant first: index n holds the
# digits of n (below 36²).
_DIGIT_PAIRS = [low + high for high in VALID_KEY_CHARS for low in VALID_KEY_CHARS]


def new_session_id():
    """Return a new session id that shares nothing with any other."""
    return _with_check(random_chars(SLOT_CHARS + RANDOM_CHARS))


def successor_id(session_id):
    """Return a new id for the session now known by ``session_id``, on the same Redis slot."""
    return _with_check(session_id[:SLOT_CHARS] + random_chars(RANDOM_CHARS))


def random_chars(count):
    """Return ``count`` characters of VALID_KEY_CHARS, uniform and independent, from the secrets module."""
    # One draw of a number below 36**count, written in base 36: what
    # get_random_string() gives, at one system call instead of one per character.
    number = secrets.randbelow(len(VALID_KEY_CHARS) ** count)
    chars = []
    for _ in range(count // 2):
        number, pair = divmod(number, len(_DIGIT_PAIRS))
        chars.append(_DIGIT_PAIRS[pair])
    if count % 2:
        chars.append(VALID_KEY_CHARS[number])
    return "".join(chars)


def _with_check(body):
    digest = _id_digest(body)
    session_id = body + _check_chars(digest)
    # Issued here: its name is known without another hash when it comes back.
    _remember_name(session_id, _name(session_id, digest))
    return session_id


def _remember_name(session_id, name):
    if len(_issued_names) >= ISSUED_NAMES_KEPT:
        _issued_names.clear()
    _issued_names[session_id] = name


def _id_digest(body):
    # One keyed hash (BLAKE2b) of an id's first 28 characters gives both its
    # check characters (from its first 8 bytes) and its name (the next 16).
    return _mac(ID_SALT, body.encode())


def _check_chars(digest):
    number = int.from_bytes(digest[:8], "big")
    pairs = len(_DIGIT_PAIRS)
    return _DIGIT_PAIRS[number % pairs] + _DIGIT_PAIRS[number // pairs % pairs]


def is_well_formed(value):
    """Return True if ``value`` has the shape of an id: 32 characters of [a-z0-9]."""
    return isinstance(value, str) and SESSION_ID_RE.fullmatch(value) is not None


def is_valid_session_id(value):
    """Return True if ``value`` is an id this server issued (it may have ended since)."""
    return valid_session_name(value) is not None


def valid_session_name(value):
    """Return session_name(value) if ``value`` is an id this server issued, else None."""
    try:
        return _issued_names[value]
    except (KeyError, TypeError):
        pass
    if not is_well_formed(value):
        return None
    digest = _id_digest(value[:-CHECK_CHARS])
    if not hmac.compare_digest(_check_chars(digest), value[-CHECK_CHARS:]):
        return None
    name = _name(value, digest)
    _remember_name(value, name)
    return name


def session_name(session_id):
    """
    Return the name under which Redis knows the session ``session_id``.

    A 4-hex-digit tag of the id's slot characters, then 128 bits of a keyed
    hash of the id under a key derived from SECRET_KEY, in base64url. A Redis
    dump, a replica or MONITOR output shows no value usable as a cookie.
    """
    try:
        return _issued_names[session_id]
    except KeyError:
        return _name(session_id, _id_digest(session_id[:-CHECK_CHARS]))


def _name(session_id, digest):
    return _slot_tag(session_id[:SLOT_CHARS]) + base64.urlsafe_b64encode(digest[8:24])[:22].decode()


def _slot_tag(slot_chars):
    try:
        return _slot_tags[slot_chars]
    except KeyError:
        tag = _slot_tags[slot_chars] = _mac(TAG_SALT, slot_chars.encode()).hex()[:4]
        return tag


def session_redis_key(name):
    """Return the Redis key of the session named ``name`` (see session_name())."""
    return f"{key_prefix()}s:{{{name[:4]}}}{name[4:]}"


def moved_record_key(name):
    """Return the key that records, for a short while, where the session ``name`` moved to."""
    return f"{key_prefix()}m:{{{name[:4]}}}{name[4:]}"


def user_index_key(user_id):
    """
    Return the key of the hash that holds ``user_id``'s index, and those of up to USERS_PER_BUCKET others.

    Users share keys because a key of its own costs a user about 160 bytes,
    more than the session itself; a field in a small hash costs a few. An
    integer id shares with its neighbours (ids 0-63, 64-127, ...); any other
    id with those of the same 16-bit hash.
    """
    return f"{key_prefix()}u:{index_bucket(user_id)}"


def index_bucket(user_id):
    """Return the name of the bucket that holds ``user_id``'s index (see user_index_key())."""
    text = str(user_id)
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return str(int(text) // USERS_PER_BUCKET)
    return "h" + hashlib.blake2b(text.encode(), digest_size=2).hexdigest()


def index_buckets_key():
    """Return the key of the set of every bucket an index was filed in (clearsessions walks it)."""
    return f"{key_prefix()}u"


def session_handle(name):
    """Return an opaque, stable id for a session that is safe to show or log."""
    return _mac(HANDLE_SALT, name.encode()).hex()[:16]


def value_tag(name, value):
    """
    Return the tag that binds ``value`` (bytes, or a memoryview) to the session ``name``.

    A value copied to another session's key, or edited in Redis, no longer
    matches its tag.
    """
    hasher = _keyed_hasher(FIELD_SALT, TAG_BYTES).copy()
    hasher.update(name.encode())
    hasher.update(b"\0")
    hasher.update(value)
    return hasher.digest()


def seal_successor(session_id, new_id):
    """Return ``new_id`` encrypted so that only a holder of ``session_id`` can read it."""
    return bytes(a ^ b for a, b in zip(new_id.encode(), _mac(SUCCESSOR_SALT, session_id.encode())))


def open_successor(session_id, sealed):
    """Return the id sealed by seal_successor() for ``session_id``, or None if it is not one."""
    if len(sealed) != 32:
        return None
    new_id = bytes(a ^ b for a, b in zip(sealed, _mac(SUCCESSOR_SALT, session_id.encode())))
    new_id = new_id.decode("latin-1")
    return new_id if is_valid_session_id(new_id) else None


def _mac(salt, message):
    mac = _keyed_hasher(salt).copy()
    mac.update(message)
    return mac.digest()


# Keyed BLAKE2b (a MAC by design, and faster here than HMAC-SHA256) under a
# key derived from SECRET_KEY for each use: derived once, not on every request.
_hashers = {}
# The tag of each of the 36³ slot prefixes, computed once.
_slot_tags = {}
# The names of ids issued, or found issued by valid_session_name(), lately: a
# browser sends the same id with every request, and a name costs a keyed
# hash. Only ids that passed the check go in, so a hit is as good as it.
_issued_names = {}
ISSUED_NAMES_KEPT = 4096


def _keyed_hasher(salt, digest_size=64):
    try:
        return _hashers[salt, digest_size]
    except KeyError:
        key = hashlib.sha256(salt.encode() + settings.SECRET_KEY.encode()).digest()
        hasher = _hashers[salt, digest_size] = hashlib.blake2b(key=key, digest_size=digest_size)
        return hasher


@receiver(setting_changed)
def _forget_hashers(*, setting, **kwargs):
    if setting == "SECRET_KEY":
        _hashers.clear()
        _slot_tags.clear()
        _issued_names.clear()
