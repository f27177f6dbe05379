"""The raw Redis client behind the session engine, and how its failures surface."""

import contextlib

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .exceptions import SessionStoreUnavailable


def get_client():
    """Return the raw redis-py client of the SESSION_CACHE_ALIAS cache."""
    cache = caches[settings.SESSION_CACHE_ALIAS]
    try:
        get_raw_client = cache.client.get_client
    except AttributeError:
        error_message = (
            f"CACHES[{settings.SESSION_CACHE_ALIAS!r}] must use "
            "django_redis.cache.RedisCache: the Redis session engine needs its "
            "raw client."
        )
        raise ImproperlyConfigured(error_message) from None
    return get_raw_client(write=True)


@contextlib.contextmanager
def store_errors():
    """Turn Redis connection failures and timeouts into SessionStoreUnavailable."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as e:
        error_message = f"The session store did not answer ({e.__class__.__name__}: {e})."
        raise SessionStoreUnavailable(error_message) from e
