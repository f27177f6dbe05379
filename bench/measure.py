"""Measure one engine: speed and cost per operation, lost updates."""

import dataclasses
import random
import statistics
import threading
from time import perf_counter

from django.core.cache import caches
from django.db import connections

from . import workload
from .counters import Cost, counting

OPERATIONS = ("create", "load", "update", "delete")
WARM_UP = 100
# Latency quantiles kept for the charts: every 0.5 %.
QUANTILES = 200


@dataclasses.dataclass
class Timing:
    """N runs of one operation: throughput, latency percentiles and cost per operation."""

    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cost: Cost
    quantiles_ms: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def ops_per_second(self):
        return self.count / self.seconds


@dataclasses.dataclass
class Samples:
    """The latencies and summed cost of one operation, gathered over several blocks."""

    latencies: list = dataclasses.field(default_factory=list)
    cost: Cost = dataclasses.field(default_factory=Cost)
    # Each block's latencies and its Redis time per operation, for the robust figures below.
    blocks: list = dataclasses.field(default_factory=list)
    block_redis_usec: list = dataclasses.field(default_factory=list)

    def timing(self):
        """
        Return the Timing these samples add up to.

        The 99th percentile is the median of each block's, and Redis's time
        per operation the median of each block's: a spell in which the shared
        machine stalls falls in one block, and would otherwise stand for all.
        """
        quantiles = statistics.quantiles(self.latencies, n=QUANTILES, method="inclusive")
        p99 = quantiles[QUANTILES * 99 // 100 - 1]
        if len(self.blocks) >= 3 and all(len(block) >= 100 for block in self.blocks):
            p99 = statistics.median(statistics.quantiles(block, n=100, method="inclusive")[98] for block in self.blocks)
        cost = self.cost.per(len(self.latencies))
        if len(self.block_redis_usec) >= 3:
            cost.redis_usec = statistics.median(self.block_redis_usec)
        return Timing(
            count=len(self.latencies),
            seconds=sum(self.latencies),
            p50_ms=quantiles[QUANTILES // 2 - 1] * 1000,
            p99_ms=p99 * 1000,
            cost=cost,
            quantiles_ms=[q * 1000 for q in quantiles],
        )


def timed(function, items, samples, redis_client, db_alias):
    """Call ``function(*item)`` for each item, timing each, into ``samples``; return the results."""
    results, latencies = [], []
    with counting(redis_client, db_alias) as cost:
        for item in items:
            start = perf_counter()
            results.append(function(*item))
            latencies.append(perf_counter() - start)
    samples.latencies += latencies
    samples.blocks.append(latencies)
    samples.block_redis_usec.append(cost.redis_usec / max(len(items), 1))
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
