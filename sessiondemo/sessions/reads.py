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

from .connection import arun_packet, is_cluster, run_packet


def read(client, key, idle_ms):
    """
    Return ``key``'s value and Redis's time in ms, sliding its TTL to ``idle_ms``.

    (None, None) if the key does not exist.
    """
    if is_cluster(client):
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("GETEX", key, "PX", idle_ms)
        pipe.execute_command("PEXPIRETIME", key)
        value, expires_at = pipe.execute()
    else:
        value, expires_at = _read_packed(client, _packet(key.encode(), str(idle_ms).encode()))
    if value is None:
        return None, None
    return value, expires_at - idle_ms


async def aread(client, key, idle_ms):
    """Return what read() returns, on an asyncio client."""
    if is_cluster(client):
        pipe = client.pipeline()
        pipe.execute_command("GETEX", key, "PX", idle_ms)
        pipe.execute_command("PEXPIRETIME", key)
        value, expires_at = await pipe.execute()
    else:
        packet = _packet(key.encode(), str(idle_ms).encode())
        try:
            replies = await arun_packet(client, packet, 2)
        except (RedisConnectionError, RedisTimeoutError):
            replies = await arun_packet(client, packet, 2)
        value, expires_at = _raised(replies)
    if value is None:
        return None, None
    return value, expires_at - idle_ms


def _packet(key, idle_ms):
    # The two commands in Redis's protocol, written out: what redis-py would
    # send, at a tenth of the cost of having it assemble them.
    return b"*4\r\n$5\r\nGETEX\r\n$%d\r\n%b\r\n$2\r\nPX\r\n$%d\r\n%b\r\n*2\r\n$11\r\nPEXPIRETIME\r\n$%d\r\n%b\r\n" % (
        len(key), key, len(idle_ms), idle_ms, len(key), key
    )


def _read_packed(client, packet):
    try:
        replies = run_packet(client, packet, 2)
    except (RedisConnectionError, RedisTimeoutError):
        # A pooled connection may have gone stale (a restart, a failover):
        # a read may be sent again, once, on a fresh one.
        replies = run_packet(client, packet, 2)
    return _raised(replies)


def _raised(replies):
    """Return ``replies``, raising the first that is an error."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
