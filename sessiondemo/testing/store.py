"""Point the site's session store at another Redis, for tests and benchmarks."""

import contextlib
import copy
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
import redis.asyncio.connection
from django_redis.pool import ConnectionFactory
from redis.connection import SSLConnection

from sessiondemo.sessions.cluster import ClusterClient

from .probes import AsyncCountingConnection, CountingConnection


class AsyncCountingSSLConnection(AsyncCountingConnection, redis.asyncio.connection.SSLConnection):
    """AsyncCountingConnection over TLS."""


class CountingSSLConnection(CountingConnection, SSLConnection):
    """CountingConnection over TLS: what a ``rediss://`` URL gets instead of the TCP one."""

    asyncio_class = AsyncCountingSSLConnection


def point_sessions_at(url, options=None):
    """
    Make the session engine use the Redis at ``url`` from now on.

    ``options``, if given, replaces the sessions cache's whole OPTIONS.
    """
    alias = settings.CACHES[settings.SESSION_CACHE_ALIAS]
    _forget_pool(alias["LOCATION"])
    alias["LOCATION"] = url
    if options is not None:
        alias["OPTIONS"] = options
    _forget_pool(url)
    caches.__dict__.pop("settings", None)
    caches.close_all()
    with contextlib.suppress(AttributeError):
        delattr(caches._connections, settings.SESSION_CACHE_ALIAS)
    # What override_settings() would tell: whoever keeps a client drops it.
    setting_changed.send(sender=None, setting="CACHES", value=settings.CACHES, enter=True)


@contextlib.contextmanager
def sessions_at(url, *, options=None, pool_kwargs=None):
    """
    Use the Redis at ``url`` for sessions inside the block.

    ``options`` (USERNAME, PASSWORD, ...) are merged into the sessions cache's
    OPTIONS and ``pool_kwargs`` (ssl_ca_certs, ...) into its
    CONNECTION_POOL_KWARGS, for the block only. A ``rediss://`` URL gets the
    TLS variant of the suite's counting connection.
    """
    alias = settings.CACHES[settings.SESSION_CACHE_ALIAS]
    previous_url, previous_options = alias["LOCATION"], alias["OPTIONS"]
    block_options = copy.deepcopy(previous_options)
    block_options.update(options or {})
    kwargs = block_options.setdefault("CONNECTION_POOL_KWARGS", {})
    kwargs.update(pool_kwargs or {})
    if url.startswith("rediss://") and kwargs.get("connection_class") is CountingConnection:
        kwargs["connection_class"] = CountingSSLConnection
    point_sessions_at(url, block_options)
    try:
        yield
    finally:
        point_sessions_at(previous_url, previous_options)


def _forget_pool(url):
    """
    Close and drop django-redis's connection pool for ``url``, or the cluster client.

    django-redis keeps one pool per URL for the life of the process, whatever
    the OPTIONS; without this, a block with other credentials or TLS settings
    (or other sentinels) for a URL seen before would get the old pool.
    """
    ClusterClient.close_clusters(url)
    for key in [key for key in ConnectionFactory._pools if _pool_url(key) == url]:
        pool = ConnectionFactory._pools.pop(key)
        pool.disconnect()
        # A Sentinel pool also holds connections to the sentinels themselves.
        manager = getattr(pool, "sentinel_manager", None)
        if manager is not None:
            manager.close()


def _pool_url(key):
    """
    Return the cache LOCATION that django-redis keyed a pool ``key`` for.

    django-redis's SentinelClient keys two pools per LOCATION, the LOCATION
    with ``is_master=1`` (the primary) and with ``is_master=0`` (replicas).
    """
    parts = urlsplit(key)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name == "is_master" for name, _ in query):
        return key
    query = [(name, value) for name, value in query if name != "is_master"]
    return urlunsplit(parts._replace(query=urlencode(query)))
