"""Memory per stored session: Redis's used_memory and each key's MEMORY USAGE, or the table."""

import dataclasses
import statistics
from contextlib import nullcontext

from django.db import connections, transaction

from . import workload

WARM_UP = 1000


@dataclasses.dataclass
class Memory:
    """What ``sessions`` stored sessions take, per session."""

    sessions: int
    redis_used_memory: float | None = None  # used_memory delta, less client buffers
    redis_memory_usage: float | None = None  # MEMORY USAGE summed over the keys
    redis_keys: float | None = None
    redis_layout: str | None = None  # each kind of key (type/encoding) and its average size
    table_bytes: float | None = None  # the session table and its indexes


def measure_memory(engine, store, count, redis_client):
    """Store ``count`` sessions in empty stores and return what they take per session."""
    # A first, unmeasured fill: Redis's allocator and Lua state settle.
    reset_stores(engine, redis_client)
    store_sessions(engine, store, min(count, WARM_UP))
    reset_stores(engine, redis_client)
    used_before = used_memory(redis_client)
    table_before = table_size(engine.db_alias) if engine.db_alias else None
    store_sessions(engine, store, count)
    memory = Memory(sessions=count)
    if engine.uses_redis:
        used_after = used_memory(redis_client)
        keys = describe_keys(redis_client)
        memory.redis_used_memory = (used_after - used_before) / count
        memory.redis_memory_usage = sum(size for _, size in keys) / count
        memory.redis_keys = len(keys) / count
        memory.redis_layout = layout(keys)
    if engine.db_alias:
        memory.table_bytes = (table_size(engine.db_alias) - table_before) / count
    reset_stores(engine, redis_client)
    return memory


def used_memory(redis_client):
    """Return the bytes Redis has allocated, less its clients' buffers (which come and go)."""
    stats = redis_client.memory_stats()
    return stats["total.allocated"] - stats["clients.normal"]


def store_sessions(engine, store, count):
    """
    Create ``count`` sessions; nothing here is timed.

    Each create runs the engine's own code and stores what it always stores;
    for a database engine, one transaction around the lot saves a commit per
    session.
    """
    with transaction.atomic(using=engine.db_alias) if engine.db_alias else nullcontext():
        for user_id in range(1, count + 1):
            workload.create(store, user_id)


def reset_stores(engine, redis_client):
    """Empty Redis and the engine's session table."""
    redis_client.flushall()
    if engine.db_alias:
        connection = connections[engine.db_alias]
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("DELETE FROM django_session")
                cursor.execute("VACUUM")
            else:
                cursor.execute("TRUNCATE django_session")


def describe_keys(redis_client):
    """Return (kind, MEMORY USAGE) of every key, kind being 'type/encoding'."""
    keys = list(redis_client.scan_iter(count=1000))
    pipe = redis_client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.object("encoding", key)
        pipe.memory_usage(key, samples=0)
    replies = iter(pipe.execute())
    triples = zip(replies, replies, replies)
    return [(f"{text(kind)}/{text(encoding)}", size) for kind, encoding, size in triples]


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def layout(keys):
    """Return each kind of key with its average size, largest first, as text."""
    sizes = {}
    for kind, size in keys:
        sizes.setdefault(kind, []).append(size)
    ranked = sorted(sizes.items(), key=lambda item: -statistics.mean(item[1]))
    return ", ".join(f"{kind} {statistics.mean(found):,.0f} B" for kind, found in ranked)


def table_size(alias):
    """Return the bytes the session table and its indexes occupy in database ``alias``."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA page_size")
            page_size = cursor.fetchone()[0]
            cursor.execute("PRAGMA page_count")
            pages = cursor.fetchone()[0]
            cursor.execute("PRAGMA freelist_count")
            return (pages - cursor.fetchone()[0]) * page_size
        cursor.execute("SELECT pg_total_relation_size('django_session')")
        return cursor.fetchone()[0]
