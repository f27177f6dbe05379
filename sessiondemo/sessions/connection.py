"""The raw Redis client behind the session engine, and how its failures surface."""

import contextlib

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from redis.cluster import RedisCluster
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
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


def is_cluster(client):
    """Return True if ``client`` talks to a Redis Cluster, whose pipelines are not ordered across keys."""
    return isinstance(client, RedisCluster)


# What a store that cannot answer raises: a server that is down or silent, or
# full (maxmemory reached with noeviction: it refuses writes), or, on Redis
# Cluster, a cluster that is down (CLUSTERDOWN), has slots no node serves, or
# is moving a key's slot (TRYAGAIN) after redis-py's own retries.
UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OutOfMemoryError,
    ClusterDownError,
    SlotNotCoveredError,
    TryAgainError,
)


def _is_unavailable(error):
    """Return whether ``error`` means the store cannot answer now, not a bug."""
    if isinstance(error, RedisClusterException):
        # How redis-py's cluster client reports that no node answers its
        # topology refresh: "Redis Cluster cannot be connected" from a ConnectionError.
        return isinstance(error.__cause__, UNAVAILABLE)
    return isinstance(error, UNAVAILABLE)


@contextlib.contextmanager
def store_errors():
    """Turn Redis failures that mean "unavailable" (_is_unavailable()) into SessionStoreUnavailable."""
    try:
        yield
    except (*UNAVAILABLE, RedisClusterException) as e:
        if not _is_unavailable(e):
            raise
        error_message = f"The session store did not answer ({e.__class__.__name__}: {e})."
        raise SessionStoreUnavailable(error_message) from e
