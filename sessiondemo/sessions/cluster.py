"""
A django-redis client for Redis Cluster, which django-redis itself lacks.

``OPTIONS["CLIENT_CLASS"] = "sessiondemo.sessions.cluster.ClusterClient"`` and a
LOCATION of one or more comma-separated ``redis://`` (or ``rediss://``) URLs of
cluster nodes. The engine only uses the raw client (get_client()); django-redis's
cache API on top of it is untested on a cluster.
"""

import threading
from typing import ClassVar

from django_redis.client import DefaultClient
import redis.asyncio.cluster
import redis.asyncio.retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
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
from redis.retry import Retry

# How often redis-py retries a command that failed for the cluster's sake
# (a node down, CLUSTERDOWN, an uncovered slot), refreshing the topology each
# time. Its default of 10 waits 0.25 s per try on CLUSTERDOWN: 2.75 s before
# the visitor gets the 503; 3 keep that near the 1 s socket timeouts.
RETRIES = 3

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


def async_cluster(nodes, kwargs):
    """Return a redis.asyncio cluster client for the startup ``nodes`` [(host, port)], as ClusterClient makes one."""
    return redis.asyncio.cluster.RedisCluster(
        startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in nodes],
        retry=redis.asyncio.retry.Retry(ExponentialWithJitterBackoff(base=0.01, cap=1), RETRIES),
        policy_resolver=AsyncScriptPolicies(AsyncStaticPolicyResolver()),
        **kwargs,
    )


class _RedisCluster(RedisCluster):
    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        # redis-py 8.1 gives a pipeline the default resolver, not the client's.
        pipe._policy_resolver = self._policy_resolver
        return pipe


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
