"""The engine's own settings, each read here and nowhere else."""

import functools

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

# Read on every request: each setting is looked up once, until a test changes one.
_values = {}


def _setting(name, default):
    try:
        return _values[name]
    except KeyError:
        value = _values[name] = getattr(settings, name, default)
        return value


@receiver(setting_changed)
def _forget_settings(**kwargs):
    _values.clear()


def key_prefix():
    """Return the prefix of every Redis key the engine writes."""
    return _setting("SESSION_REDIS_KEY_PREFIX", "sd:")


def idle_age_ms():
    """Return how long a session lives without a request, in ms: SESSION_COOKIE_AGE."""
    return _setting("SESSION_COOKIE_AGE", 14 * 24 * 60 * 60) * 1000


def absolute_age():
    """Return the most seconds a session may live after login, however active."""
    return _setting("SESSION_REDIS_ABSOLUTE_AGE", 12 * 60 * 60)


def absolute_age_ms():
    """Return absolute_age() in milliseconds; "no limit" (0) is a limit no session reaches."""
    return (absolute_age() or 10**10) * 1000


def max_sessions_per_user():
    """Return how many sessions one user may have; a login past it ends the oldest."""
    return _setting("SESSION_REDIS_MAX_PER_USER", 20)


def max_bytes():
    """Return the largest a session's data may grow, in bytes of stored keys and values."""
    return _setting("SESSION_REDIS_MAX_BYTES", 64 * 1024)


def renew_after():
    """Return after how many seconds a session id is replaced by a new one (0: never)."""
    return _setting("SESSION_REDIS_RENEW_AFTER", 0)


def renewal_grace():
    """Return how many seconds a replaced session id keeps working."""
    return _setting("SESSION_REDIS_RENEWAL_GRACE", 60)


def unknown_ids_per_minute():
    """Return how many unknown session ids one client (client_address()) may send in a minute."""
    return _setting("SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE", 60)


# What the engine needs from the site comes in as a setting naming a callable
# (a dotted path, or the callable itself), with a plain default of its own.


def client_address():
    """
    Return the callable(request) -> text that names the client (SESSION_REDIS_CLIENT_ADDRESS).

    Unknown session ids are counted per this text, and log lines show it. The
    default is the request's REMOTE_ADDR; behind a proxy, or to count an IPv6
    client by its network, name a function that knows better.
    """
    return _callable("SESSION_REDIS_CLIENT_ADDRESS", "middleware.remote_addr")


def unavailable_response():
    """
    Return the callable(request, exception) -> response for a session store outage.

    SESSION_REDIS_UNAVAILABLE_RESPONSE; the default is a plain 503. Whatever it
    is must not touch the session (the store is down): no request context.
    """
    return _callable("SESSION_REDIS_UNAVAILABLE_RESPONSE", "middleware.plain_unavailable")


def too_many_response():
    """
    Return the callable(request, retry_after) -> response for a client that sent too many unknown ids.

    SESSION_REDIS_TOO_MANY_RESPONSE; the default is a plain 429. It must not
    touch the session either.
    """
    return _callable("SESSION_REDIS_TOO_MANY_RESPONSE", "middleware.plain_too_many")


def min_replicas():
    """Return how many replicas must acknowledge a login or an id change (SESSION_REDIS_MIN_REPLICAS; 0: none)."""
    return _setting("SESSION_REDIS_MIN_REPLICAS", 0)


def replica_timeout_ms():
    """Return how long a login waits for those replicas, in ms (SESSION_REDIS_REPLICA_TIMEOUT_MS)."""
    return _setting("SESSION_REDIS_REPLICA_TIMEOUT_MS", 500)


def native_async():
    """Return SESSION_REDIS_NATIVE_ASYNC: whether async callers get redis.asyncio (else a thread)."""
    return _setting("SESSION_REDIS_NATIVE_ASYNC", True)


def serializer():
    """Return the SESSION_SERIALIZER class."""
    try:
        return _values["SESSION_SERIALIZER class"]
    except KeyError:
        value = _values["SESSION_SERIALIZER class"] = import_string(settings.SESSION_SERIALIZER)
        return value


def _callable(name, default):
    value = _setting(name, None) or f"{__package__}.{default}"
    return value if callable(value) else _imported(value)


@functools.cache
def _imported(path):
    return import_string(path)
