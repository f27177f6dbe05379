"""Measure one engine: speed and cost per operation, memory per session, lost updates."""

import dataclasses
import random
import statistics
import threading
from contextlib import nullcontext
from time import perf_counter

from django.core.cache import caches
from django.db import connections, transaction

from . import workload
from .counters import Cost, counting

OPERATIONS = ("create", "load", "update", "delete")
WARM_UP = 100


@dataclasses.dataclass
class Timing:
    """N runs of one operation: throughput, latency percentiles and cost per operation."""

    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cost: Cost

    @property
    def ops_per_second(self):
        return self.count / self.seconds


@dataclasses.dataclass
class Samples:
    """The latencies and summed cost of one operation, gathered over several blocks."""

    latencies: list = dataclasses.field(default_factory=list)
    cost: Cost = dataclasses.field(default_factory=Cost)

    def timing(self):
        """Return the Timing these samples add up to."""
        percentiles = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return Timing(
            count=len(self.latencies),
            seconds=sum(self.latencies),
            p50_ms=percentiles[49] * 1000,
            p99_ms=percentiles[98] * 1000,
            cost=self.cost.per(len(self.latencies)),
        )


def timed(function, items, samples, redis_client, db_alias):
    """Call ``function(*item)`` for each item, timing each, into ``samples``; return the results."""
    results = []
    with counting(redis_client, db_alias) as cost:
        for item in items:
            start = perf_counter()
            results.append(function(*item))
            samples.latencies.append(perf_counter() - start)
    samples.cost = samples.cost + cost
    return results


def run_operations(store, user_ids, samples, redis_client, db_alias):
    """Create, load, update and delete a session per user id, into ``samples`` by operation."""
    user_ids = list(user_ids)
    stores = [store] * len(user_ids)

    def each(op, function, *columns):
        return timed(function, list(zip(*columns)), samples[op], redis_client, db_alias)

    keys = each("create", workload.create, stores, user_ids)
    each("load", workload.load, stores, keys, user_ids)
    each("update", workload.update, stores, keys, user_ids)
    each("delete", workload.delete, stores, keys)
    if store().exists(keys[0]):
        raise AssertionError("a deleted session still exists")


def new_samples():
    return {op: Samples() for op in OPERATIONS}


def measure_speed(engines, counts, redis_client, blocks=10):
    """
    Time ``counts[engine]`` of each operation per engine, after a warm-up.

    The engines take turns, in a new random order in each of ``blocks``
    blocks, so a slow spell of the machine falls on all of them rather than
    on one. Engines that write to a database take their turns after the
    others, so the disk writes they leave behind slow down no Redis engine.
    """
    samples = {engine: new_samples() for engine in engines}
    for engine in engines:
        with engine.active() as store:
            warm_up = new_samples()
            run_operations(store, range(1, WARM_UP + 1), warm_up, redis_client, engine.db_alias)
    order = random.Random(0)
    for group in ([e for e in engines if not e.db_alias], [e for e in engines if e.db_alias]):
        for block in range(blocks):
            for engine in order.sample(group, len(group)):
                size = counts[engine] // blocks
                user_ids = range(block * size + 1, (block + 1) * size + 1)
                with engine.active() as store:
                    found = samples[engine]
                    run_operations(store, user_ids, found, redis_client, engine.db_alias)
    return {
        engine: {op: found.timing() for op, found in by_op.items()}
        for engine, by_op in samples.items()
    }


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


@dataclasses.dataclass
class LostUpdates:
    """Writes to distinct keys of one session that did not survive concurrent saves."""

    threads: int
    rounds: int
    repeats: int
    lost_at_end: int = 0  # of threads * repeats keys, checked after the last round
    lost_any_round: int = 0  # of threads * rounds * repeats writes, checked after each round
    errors: list = dataclasses.field(default_factory=list)


class Jar:
    """What the browser holds: the session key (for signed_cookies, the session itself)."""

    def __init__(self, key):
        self.key = key
        self.round = 0


def measure_lost_updates(store, threads=8, rounds=50, repeats=5):
    """Run ``threads`` writers on one session for ``rounds`` rounds, ``repeats`` times."""
    result = LostUpdates(threads, rounds, repeats)
    for _ in range(repeats):
        lost_updates_once(store, result)
    return result


def lost_updates_once(store, result):
    """Run one repetition on a fresh session and add what it lost to ``result``."""
    jar = Jar(workload.create(store, 4242))
    lock = threading.Lock()

    def check_round():
        # Runs once per round while every writer waits at the barrier.
        session = store(jar.key)
        stale = sum(session.get(f"t{i}") != jar.round for i in range(result.threads))
        result.lost_any_round += stale
        if jar.round == result.rounds - 1:
            result.lost_at_end += stale
        jar.round += 1

    start = threading.Barrier(result.threads, timeout=60)
    done = threading.Barrier(result.threads, action=check_round, timeout=60)
    crashes = []

    def writer(number):
        try:
            for round_number in range(result.rounds):
                start.wait()
                write(store, jar, lock, number, round_number, result.errors)
                done.wait()
        except Exception as e:  # noqa: BLE001 - re-raised below, in the main thread
            crashes.append(e)
            start.abort()
            done.abort()
        finally:
            connections.close_all()  # this thread's own connections
            caches.close_all()

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(result.threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if crashes:
        raise crashes[0]


def write(store, jar, lock, number, round_number, errors):
    """Set key t<number> to the round number, as one request would; record failures."""
    try:
        session = store(jar.key)
        session[f"t{number}"] = round_number
        session.save()
        with lock:
            # The browser keeps the cookie of whichever response came last.
            jar.key = session.session_key
    except Exception as e:  # noqa: BLE001 - a failed save is a result, not a crash
        with lock:
            errors.append(f"{e.__class__.__name__}: {e}")
