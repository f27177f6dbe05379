"""Session ids, and the names of the Redis keys and fields derived from them."""

import functools
import hashlib
import hmac
import re

from django.conf import settings
from django.utils.crypto import salted_hmac

from .conf import key_prefix

# Django's own format (get_random_string(32, a-z0-9)): about 165 bits.
SESSION_ID_RE = re.compile(r"[a-z0-9]{32}")
DIGEST_SALT = "sessiondemo.sessions.keys.digest"
HANDLE_SALT = "sessiondemo.sessions.keys.handle"


def is_valid_session_id(value):
    """Return True if ``value`` has the exact format this engine issues."""
    return isinstance(value, str) and SESSION_ID_RE.fullmatch(value) is not None


def session_digest(session_id):
    """
    Return the keyed hash that names a session in Redis.

    HMAC-SHA256 under a key derived from SECRET_KEY, truncated to 128 bits: a
    Redis dump, replica or MONITOR stream shows no value usable as a cookie.
    The same value as Django's salted_hmac(DIGEST_SALT, session_id, "sha256"),
    without deriving the key again on every request.
    """
    key = _derived_key(DIGEST_SALT, settings.SECRET_KEY)
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=8)
def _derived_key(salt, secret):
    return hashlib.sha256(salt.encode() + secret.encode()).digest()


def session_redis_key(digest):
    return f"{key_prefix()}s:{digest}"


def user_index_key(user_id):
    return f"{key_prefix()}u:{user_id}"


def session_handle(digest):
    """Return an opaque, stable id for a session that is safe to show or log."""
    return salted_hmac(HANDLE_SALT, digest, algorithm="sha256").hexdigest()[:16]


# Fields of a session hash: one per top-level session key, then metadata.
DATA_PREFIX = "d:"
CREATED_FIELD = "m:created"
ISSUED_FIELD = "m:issued"
RETIRED_FIELD = "m:retired"
PREVIOUS_FIELD = "m:prev"
SEEN_FIELD = "m:seen"
IDLE_FIELD = "m:idle"
USER_FIELD = "m:uid"
IP_FIELD = "m:ip"
AGENT_FIELD = "m:ua"
