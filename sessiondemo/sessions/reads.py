"""
Reading a session: one GETEX that slides the idle timeout, with Redis's clock, in one round trip.

GETEX returns the value and sets its TTL; PEXPIRETIME of the same key, right
after, returns when it now expires, by Redis's clock: that minus the TTL just
set is Redis's time, against which the absolute timeout is judged, with no
script. On one Redis (or Sentinel's primary) the two commands are written
to the connection as one packet, without the bookkeeping of redis-py's
pipeline object; on a cluster both go to the key's node in a pipeline.
"""

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .connection import is_cluster, run_packed


def read(client, key, idle_ms):
    """
    Return ``key``'s value and Redis's time in ms, sliding its TTL to ``idle_ms``.

    (None, None) if the key does not exist.
    """
    commands = (("GETEX", key, "PX", idle_ms), ("PEXPIRETIME", key))
    value, expires_at = _run(client, commands)
    if value is None:
        return None, None
    return value, expires_at - idle_ms


def _run(client, commands):
    if is_cluster(client):
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()
    try:
        replies = run_packed(client, commands)
    except (RedisConnectionError, RedisTimeoutError):
        # A pooled connection may have gone stale (a restart, a failover):
        # a read may be sent again, once, on a fresh one.
        replies = run_packed(client, commands)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
