"""
A django-redis client for Redis Cluster, which django-redis itself lacks.

``OPTIONS["CLIENT_CLASS"] = "sessiondemo.sessions.cluster.ClusterClient"`` and a
LOCATION of one or more comma-separated ``redis://`` (or ``rediss://``) URLs of
cluster nodes. The engine only uses the raw client (get_client()); django-redis's
cache API on top of it is untested on a cluster.

Its redis-py clients, sync and asyncio, route scripts by their keys, wait out
a slot's migration (TRYAGAIN, redirections that never settle) instead of
failing, and follow ASK to a primary being added. What that takes of redis-py
8.1 beyond its public API lives here only: the pipeline's policy resolver and
parent_execute_command, get_node() as the ASK path calls it, and the nodes
manager's connection_kwargs; test_cluster_resharding.py's
test_the_redis_py_internals_the_cluster_client_leans_on_are_there fails if an
upgrade moves them.
"""

import asyncio
import threading
import time
from typing import ClassVar

from django_redis.client import DefaultClient
import redis.asyncio.cluster
import redis.asyncio.retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import PRIMARY, ClusterNode, RedisCluster
from redis.commands.policies import (
    AsyncBasePolicyResolver,
    AsyncStaticPolicyResolver,
    BasePolicyResolver,
    CommandPolicies,
    RequestPolicy,
    ResponsePolicy,
    StaticPolicyResolver,
)
from redis.connection import parse_url
from redis.exceptions import ClusterDownError, ClusterError, TryAgainError
from redis.retry import Retry

# How often redis-py retries a command that failed for the cluster's sake
# (a node down, CLUSTERDOWN, an uncovered slot), refreshing the topology each
# time. Its default of 10 waits 0.25 s per try on CLUSTERDOWN: 2.75 s before
# the visitor gets the 503; 3 keep that near the 1 s socket timeouts.
RETRIES = 3

# How long a command waits out its slot's migration (resharding) before the
# visitor gets a 503. A multi-key script on a slot that is migrating (a move to
# a new id: the session, its new id and the record of the move share a slot)
# gets TRYAGAIN while its keys are split between the two nodes, for as long as
# the slot's migration lasts: milliseconds per slot with redis-cli --cluster
# reshard or rebalance. redis-py tries 16 times within about 0.1-0.4 s and
# then raises ClusterError("TTL exhausted."), which would be a 500.
SLOT_MIGRATION_WAIT = 2.0
# The pauses between tries: from the first, doubled up to the last.
MIGRATION_PAUSES = (0.005, 0.1)

_KEYED = CommandPolicies(
    request_policy=RequestPolicy.DEFAULT_KEYED, response_policy=ResponsePolicy.DEFAULT_KEYED
)


class ScriptPolicies(BasePolicyResolver):
    """
    Route EVAL and EVALSHA by their keys, in pipelines too, with no extra round trip.

    Without a policy, redis-py 8.1's cluster pipeline asks a node for the keys of
    each script call (COMMAND GETKEYS, one round trip per call) before sending
    it; its plain commands already read them from the numkeys argument.
    """

    def __init__(self, fallback=None):
        super().__init__({"core": {"eval": _KEYED, "evalsha": _KEYED}}, fallback)

    def with_fallback(self, fallback):
        return ScriptPolicies(fallback)


class AsyncScriptPolicies(AsyncBasePolicyResolver):
    """ScriptPolicies for redis.asyncio's cluster client."""

    def __init__(self, fallback=None):
        super().__init__({"core": {"eval": _KEYED, "evalsha": _KEYED}}, fallback)

    def with_fallback(self, fallback):
        return AsyncScriptPolicies(fallback)


def _in_motion(error):
    """Return whether ``error`` means that the command's slot is migrating and the command did not run."""
    # TRYAGAIN: a multi-key command's keys are split between the slot's two
    # nodes. ClusterError (not its subclass ClusterDownError): redis-py's
    # tries all ended in MOVED, ASK or TRYAGAIN, so none ran.
    return isinstance(error, TryAgainError) or (
        type(error) is ClusterError and not isinstance(error, ClusterDownError)
    )


def _pauses(started):
    """Yield the pauses to make before each try again, until SLOT_MIGRATION_WAIT has passed since ``started``."""
    deadline = started + SLOT_MIGRATION_WAIT
    pause, longest = MIGRATION_PAUSES
    while time.monotonic() + pause < deadline:
        yield pause
        pause = min(pause * 2, longest)


def _still_migrating(error):
    return TryAgainError(
        f"The key's slot was still migrating after {SLOT_MIGRATION_WAIT} s ({error.__class__.__name__}: {error})."
    )


class _RedisCluster(RedisCluster):
    """RedisCluster, waiting out a migrating slot and following ASK to a primary it has not met."""

    def __init__(self, *args, **kwargs):
        self._asked_nodes = {}
        super().__init__(*args, **kwargs)

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        # redis-py 8.1 gives a pipeline the default resolver, not the client's.
        pipe._policy_resolver = self._policy_resolver
        # The commands of a pipeline that got MOVED, ASK or TRYAGAIN go again
        # one by one through this: the client's, which waits out a migration,
        # instead of the pipeline's own RedisCluster.execute_command.
        pipe.parent_execute_command = self.execute_command
        return pipe

    def execute_command(self, *args, **kwargs):
        """Run the command as RedisCluster does, waiting up to SLOT_MIGRATION_WAIT while its slot migrates."""
        started = time.monotonic()
        try:
            return super().execute_command(*args, **kwargs)
        except (TryAgainError, ClusterError) as error:
            if not _in_motion(error):
                raise
            last = error
        for pause in _pauses(started):
            time.sleep(pause)
            try:
                return super().execute_command(*args, **kwargs)
            except (TryAgainError, ClusterError) as error:
                if not _in_motion(error):
                    raise
                last = error
        raise _still_migrating(last) from last

    def get_node(self, host=None, port=None, node_name=None):
        node = super().get_node(host, port, node_name)
        if node is None and node_name and host is None and port is None:
            # redis-py 8.1 follows an ASK with get_node(node_name=...) and
            # fails (AttributeError: a 500) when it has not met that node:
            # a primary being added serves no slot yet, so CLUSTER SLOTS
            # never named it (redis/redis-py#4015). Kept apart from the
            # layout, which the next refresh rebuilds as it was.
            with self._lock:
                node = self._asked_nodes.get(node_name)
                if node is None:
                    host, _, port = node_name.rpartition(":")
                    node = self._asked_nodes[node_name] = ClusterNode(host, int(port), PRIMARY)
        return node

    def close(self):
        super().close()
        with self._lock:
            asked, self._asked_nodes = list(self._asked_nodes.values()), {}
        for node in asked:
            if node.redis_connection:
                node.redis_connection.close()


class _AsyncRedisCluster(redis.asyncio.cluster.RedisCluster):
    """_RedisCluster for redis.asyncio, whose pipelines send redirected commands through the client."""

    def __init__(self, *args, **kwargs):
        self._asked_nodes = {}
        super().__init__(*args, **kwargs)

    async def execute_command(self, *args, **kwargs):
        started = time.monotonic()
        try:
            return await super().execute_command(*args, **kwargs)
        except (TryAgainError, ClusterError) as error:
            if not _in_motion(error):
                raise
            last = error
        for pause in _pauses(started):
            await asyncio.sleep(pause)
            try:
                return await super().execute_command(*args, **kwargs)
            except (TryAgainError, ClusterError) as error:
                if not _in_motion(error):
                    raise
                last = error
        raise _still_migrating(last) from last

    def get_node(self, host=None, port=None, node_name=None):
        node = super().get_node(host, port, node_name)
        if node is None and node_name and host is None and port is None:
            # As _RedisCluster.get_node(); an asyncio node holds its connections itself.
            node = self._asked_nodes.get(node_name)
            if node is None:
                host, _, port = node_name.rpartition(":")
                node = self._asked_nodes[node_name] = redis.asyncio.cluster.ClusterNode(
                    host, int(port), PRIMARY, **self.nodes_manager.connection_kwargs
                )
        return node

    async def aclose(self):
        await super().aclose()
        asked, self._asked_nodes = list(self._asked_nodes.values()), {}
        for node in asked:
            await node.disconnect()


def async_cluster(nodes, kwargs):
    """Return a redis.asyncio cluster client for the startup ``nodes`` [(host, port)], as ClusterClient makes one."""
    return _AsyncRedisCluster(
        startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in nodes],
        retry=redis.asyncio.retry.Retry(ExponentialWithJitterBackoff(base=0.01, cap=1), RETRIES),
        policy_resolver=AsyncScriptPolicies(AsyncStaticPolicyResolver()),
        **kwargs,
    )


class ClusterClient(DefaultClient):
    """
    Serve every get_client() with one redis.cluster.RedisCluster per process.

    LOCATION's URLs are the startup nodes; the first also gives the
    credentials and TLS. SOCKET_TIMEOUT, SOCKET_CONNECT_TIMEOUT, USERNAME and
    PASSWORD apply as with DefaultClient, and CONNECTION_POOL_KWARGS go to
    every node's pool (RedisCluster drops those it does not support, such as
    health_check_interval). Like django-redis's pools, the client is shared
    by all threads and outlives the cache objects Django makes per thread.
    """

    _clusters: ClassVar[dict] = {}
    _lock = threading.Lock()

    def get_next_client_index(self, write=True, tried=None):
        # One cluster client reads and writes; it finds each key's node itself.
        return 0

    def connect(self, index=0):
        key = (tuple(self._server), repr(sorted(self._options.items(), key=str)))
        with self._lock:
            if key not in self._clusters:
                self._clusters[key] = self._new_cluster()
            return self._clusters[key]

    def _new_cluster(self):
        first, *others = self._server
        kwargs = dict(self._options.get("CONNECTION_POOL_KWARGS", {}))
        kwargs.update(self.connection_factory.make_connection_params(first))
        startup = [
            ClusterNode(options["host"], options["port"]) for options in map(parse_url, others)
        ]
        return _RedisCluster(
            startup_nodes=startup,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=1), RETRIES),
            policy_resolver=ScriptPolicies(StaticPolicyResolver()),
            **kwargs,
        )

    def disconnect(self, index=0, client=None):
        # The cluster client is shared; close_clusters() closes it.
        pass

    @classmethod
    def close_clusters(cls, location=None):
        """Close and forget the cluster clients of ``location`` (a LOCATION string), or all."""
        with cls._lock:
            for key in list(cls._clusters):
                if location is None or ",".join(key[0]) == location:
                    cls._clusters.pop(key).close()
