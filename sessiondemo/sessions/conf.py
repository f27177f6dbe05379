"""The engine's own settings, each read here and nowhere else."""

from django.conf import settings


def key_prefix():
    """Return the prefix of every Redis key the engine writes."""
    return getattr(settings, "SESSION_REDIS_KEY_PREFIX", "sd:")


def absolute_age():
    """Return the most seconds a session may live after login, however active."""
    return getattr(settings, "SESSION_REDIS_ABSOLUTE_AGE", 12 * 60 * 60)


def seen_interval():
    """Return how many seconds "last active" may lag behind the last request."""
    return getattr(settings, "SESSION_REDIS_SEEN_INTERVAL", 60)


def max_sessions_per_user():
    """Return how many sessions one user may have; a login past it ends the oldest."""
    return getattr(settings, "SESSION_REDIS_MAX_PER_USER", 20)
