"""The raw Redis client behind the session engine, and how its failures surface."""

import asyncio
import functools
import os
import threading
import weakref

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.connection
import redis.asyncio.sentinel
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.cluster import RedisCluster
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import SentinelConnectionPool

from .exceptions import SessionStoreUnavailable

# The raw client per alias: it is safe to share between threads (its pool is
# django-redis's, per server), and looking it up is on every request's path.
_clients = {}


def get_client():
    """Return the raw redis-py client of the SESSION_CACHE_ALIAS cache."""
    alias = settings.SESSION_CACHE_ALIAS
    try:
        return _clients[alias]
    except KeyError:
        client = _clients[alias] = _raw_client(alias)
        return client


@receiver(setting_changed)
def _forget_clients(*, setting, **kwargs):
    if setting in {"CACHES", "SESSION_CACHE_ALIAS"}:
        _clients.clear()
        # Each is still closed with its loop.
        _async_clients.clear()


def _raw_client(alias):
    cache = caches[alias]
    try:
        get_raw_client = cache.client.get_client
    except AttributeError:
        error_message = (
            f"CACHES[{alias!r}] must use django_redis.cache.RedisCache: the Redis "
            "session engine needs its raw client."
        )
        raise ImproperlyConfigured(error_message) from None
    return get_raw_client(write=True)


# -- The asyncio client: one per event loop ------------------------------------------

# Event loop -> {alias: its redis.asyncio client}. A client's connections
# belong to the loop that opened them; the loop's close() closes them first.
_async_clients = weakref.WeakKeyDictionary()

# What a sync connection's settings may pass on to an asyncio one: where,
# who, TLS and timeouts; not redis-py's sync objects (retry, parser, pool).
_PORTABLE = {
    "host", "port", "path", "db", "username", "password", "credential_provider", "client_name",
    "socket_timeout", "socket_connect_timeout", "socket_keepalive", "socket_keepalive_options",
    "health_check_interval", "protocol", "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs",
    "ssl_ca_certs", "ssl_ca_data", "ssl_check_hostname", "ssl_min_version", "ssl_ciphers",
}  # fmt: skip


def get_async_client():
    """Return the redis.asyncio client of the running event loop, made as get_client()'s is."""
    loop = asyncio.get_running_loop()
    alias = settings.SESSION_CACHE_ALIAS
    clients = _async_clients.get(loop)
    if clients is None:
        clients = _async_clients[loop] = {}
        _close_with(loop, clients)
    client = clients.get(alias)
    if client is None:
        client = clients[alias] = _async_twin(get_client())
    return client


def _async_twin(client):
    """Return a redis.asyncio client for the server(s) that the sync ``client`` talks to."""
    if is_cluster(client):
        from .cluster import async_cluster  # noqa: PLC0415 (only a cluster needs it)

        nodes = [(node.host, node.port) for node in client.get_nodes()]
        kwargs = client.get_connection_kwargs()
        tls = "SSL" in getattr(kwargs.get("connection_class"), "__name__", "")
        return async_cluster(nodes, {**_portable(kwargs), **({"ssl": True} if tls else {})})
    pool = client.connection_pool
    kwargs = _portable(pool.connection_kwargs)
    if isinstance(pool, SentinelConnectionPool):
        manager = pool.sentinel_manager
        sentinels = [
            (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in manager.sentinels
        ]
        twin = redis.asyncio.sentinel.Sentinel(
            sentinels,
            min_other_sentinels=manager.min_other_sentinels,
            sentinel_kwargs=_portable(manager.sentinel_kwargs),
        )
        # SentinelManagedSSLConnection when the primary speaks TLS.
        ssl = "SSL" in pool.connection_class.__name__
        return twin.master_for(pool.service_name, ssl=ssl, **kwargs)
    # from_pool(): the client owns the pool, and closing it closes the connections.
    return redis.asyncio.Redis.from_pool(
        redis.asyncio.ConnectionPool(connection_class=_async_class(pool.connection_class), **kwargs)
    )


def _async_class(connection_class):
    """Return the redis.asyncio connection class that does what the sync ``connection_class`` does."""
    # A class of one's own may name its twin (the tests' counting connection does).
    twin = getattr(connection_class, "asyncio_class", None)
    if twin is not None:
        return twin
    for base in connection_class.__mro__:
        if base.__name__ in {"SSLConnection", "UnixDomainSocketConnection", "Connection"}:
            return getattr(redis.asyncio.connection, base.__name__)
    raise ImproperlyConfigured(f"No asyncio counterpart of the Redis connection class {connection_class!r}.")


def _portable(kwargs):
    return {name: value for name, value in (kwargs or {}).items() if name in _PORTABLE}


def _close_with(loop, clients):
    """Make ``loop``'s close() close ``clients`` first, while the loop can still run it."""
    close = loop.close

    def close_clients_then_loop():
        if clients and not loop.is_running() and not loop.is_closed():
            # Forgotten first: closing runs the loop, which may ask for a client again.
            closing, _ = list(clients.values()), clients.clear()
            loop.run_until_complete(_aclose_all(closing))
        close()

    # Hazard: asyncio has no hook for a loop's end; an instance attribute is
    # the one way in. A loop that takes none (uvloop's) lives as long as its
    # process, whose exit closes its sockets.
    try:
        loop.close = close_clients_then_loop
    except AttributeError:
        pass


async def _aclose_all(clients):
    for client in clients:
        await client.aclose()
        manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            await sentinel.aclose()


async def arun_packed(client, commands):
    """Run ``commands`` as run_packed() does, on an asyncio client."""
    return await arun_packet(client, _packet(commands), len(commands))


async def arun_packet(client, packet, count):
    """Send ``packet`` as run_packet() does, on an asyncio client."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command([packet])
        return [await _aread_reply(connection) for _ in range(count)]
    except BaseException:
        # Replies may be left unread on it (a timeout, a cancelled task).
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)


async def _aread_reply(connection):
    try:
        return await connection.read_response()
    except ResponseError as error:
        return error


def run_packed(client, commands):
    """
    Send ``commands`` (argument tuples) to the server in one write; return their replies in order.

    An error reply comes back as its exception, not raised, so that every
    reply is read. One connection runs them in order. Not for Redis Cluster,
    whose commands go to the nodes of their keys.
    """
    return run_packet(client, _packet(commands), len(commands))


def run_packet(client, packet, count):
    """Send ``packet``, ``count`` commands already in Redis's protocol (RESP), as run_packed() does."""
    with _Borrowed(client) as connection:
        connection.send_packed_command([packet])
        return _replies(connection, count)


def run_packed_batches(client, batches):
    """
    Send each list of commands in ``batches`` as run_packed() does; yield each one's replies.

    Each batch goes out before the replies to the one before are read: Redis
    works on one while the caller prepares the next. For long jobs
    (clearsessions), on one connection held throughout.
    """
    with _Borrowed(client) as connection:
        waiting = None
        for commands in batches:
            connection.send_packed_command([_packet(commands)])
            if waiting is not None:
                yield _replies(connection, waiting)
            waiting = len(commands)
        if waiting is not None:
            yield _replies(connection, waiting)


class _Borrowed:
    """A connection lent for a block; one the block left mid-way is closed, not lent again."""

    # A class, not @contextmanager: every Redis call goes through it.

    def __init__(self, client):
        self.lender = _lender(client)

    def __enter__(self):
        self.connection = self.lender.take()
        return self.connection

    def __exit__(self, error_type, error, traceback):
        if error_type is not None:
            # Replies may be left unread on it: it cannot serve another request.
            self.connection.disconnect()
        self.lender.give(self.connection)
        return False


def _packet(commands):
    """Return ``commands`` (tuples of str, bytes and int) in Redis's protocol, as one bytes object."""
    return b"".join(map(_pack_command, commands))


def _pack_in_python(command):
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


try:
    # What redis-py packs with when hiredis is installed (the requirements pin it).
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover
    _pack_command = _pack_in_python


def _lender(client):
    lender = _lenders.get(client.connection_pool)
    if lender is None:
        lender = _lenders.setdefault(client.connection_pool, _Lender(client.connection_pool))
    return lender


class _Lender:
    """
    The engine's own idle connections to the server of one redis-py pool, made as that pool makes them.

    redis-py's pool takes as long to lend a connection and take it back
    (locks, metrics, a readiness check) as loopback takes to answer; this
    keeps what matters of it: a connection made as the pool makes it (TLS,
    credentials, Sentinel's current primary), checked before each use for
    replies left unread or a server gone (as after a restart), and never
    shared by two threads, nor across a fork.
    """

    def __init__(self, pool):
        self.pool = pool
        self.pid = os.getpid()
        self.idle = []
        self.lock = threading.Lock()

    def take(self):
        if self.pid != os.getpid():
            # A forked child: its parent's sockets are not its to use.
            self.pid, self.idle = os.getpid(), []
        with self.lock:
            connection = self.idle.pop() if self.idle else None
        if connection is None:
            connection = self.pool.connection_class(**self.pool.connection_kwargs)
        connection.connect()
        try:
            if connection.can_read():
                raise RedisConnectionError("Connection has data")
        except (RedisConnectionError, RedisTimeoutError, OSError):
            connection.disconnect()
            connection.connect()
        return connection

    def give(self, connection):
        if connection.pid == self.pid:
            with self.lock:
                self.idle.append(connection)


# One lender per redis-py pool (django-redis keeps one pool per server for the process).
_lenders = weakref.WeakKeyDictionary()


def _replies(connection, count):
    replies = []
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies


def is_cluster(client):
    """Return True if ``client`` talks to a Redis Cluster, whose pipelines are not ordered across keys."""
    return _is_cluster_class(type(client))


@functools.cache
def _is_cluster_class(cls):
    # Once per class: redis-py's clients derive from typing Protocols, which
    # make every isinstance() against them walk the class's attributes.
    return issubclass(cls, (RedisCluster, redis.asyncio.cluster.RedisCluster))


# What a store that cannot answer raises: a server that is down or silent, or
# full (maxmemory reached with noeviction: it refuses writes), or, on Redis
# Cluster, a cluster that is down (CLUSTERDOWN), has slots no node serves, or
# is still moving a key's slot (TRYAGAIN) after the cluster client's wait
# (cluster.SLOT_MIGRATION_WAIT).
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


class _StoreErrors:
    """The context manager that store_errors() returns."""

    # A class, not @contextmanager: it wraps every Redis call, and a
    # generator costs a few microseconds more each time.

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        if not isinstance(error, (*UNAVAILABLE, RedisClusterException)) or not _is_unavailable(error):
            return False
        error_message = f"The session store did not answer ({error.__class__.__name__}: {error})."
        raise SessionStoreUnavailable(error_message) from error


_store_errors = _StoreErrors()


def store_errors():
    """Turn Redis failures that mean "unavailable" (_is_unavailable()) into SessionStoreUnavailable."""
    return _store_errors
