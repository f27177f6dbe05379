"""The engine's own settings, each read here and nowhere else."""

from django.conf import settings


def key_prefix():
    """Return the prefix of every Redis key the engine writes."""
    return getattr(settings, "SESSION_REDIS_KEY_PREFIX", "sd:")


def absolute_age():
    """Return the most seconds a session may live after login, however active."""
    return getattr(settings, "SESSION_REDIS_ABSOLUTE_AGE", 12 * 60 * 60)


def absolute_age_ms():
    """Return absolute_age() in milliseconds; "no limit" (0) is a limit no session reaches."""
    return (absolute_age() or 10**10) * 1000


def max_sessions_per_user():
    """Return how many sessions one user may have; a login past it ends the oldest."""
    return getattr(settings, "SESSION_REDIS_MAX_PER_USER", 20)


def max_bytes():
    """Return the largest a session's data may grow, in bytes of stored keys and values."""
    return getattr(settings, "SESSION_REDIS_MAX_BYTES", 64 * 1024)


def renew_after():
    """Return after how many seconds a session id is replaced by a new one (0: never)."""
    return getattr(settings, "SESSION_REDIS_RENEW_AFTER", 0)


def renewal_grace():
    """Return how many seconds a replaced session id keeps working."""
    return getattr(settings, "SESSION_REDIS_RENEWAL_GRACE", 60)


def unknown_ids_per_minute():
    """Return how many unknown session ids one client IP may send in a minute."""
    return getattr(settings, "SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE", 60)
