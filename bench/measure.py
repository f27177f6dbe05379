"""Measure one engine: speed and cost per operation, lost updates."""

import contextlib
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
# Operations an engine runs before the next engine's turn, within a block.
TURN = 100
# Of which the first run untimed: switching engines (override_settings and
# its signals) and reading Redis's counters (counters.counting()) leave the
# next operation or two of any engine slower.
SETTLE = 2
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
    counted: int = 0  # operations whose cost was counted, timed or not
    # Each block's latencies, and its [operations counted, Redis time], for the robust figures below.
    blocks: list = dataclasses.field(default_factory=list)
    block_costs: list = dataclasses.field(default_factory=list)

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
        cost = self.cost.per(self.counted)
        if len(self.block_costs) >= 3:
            cost.redis_usec = statistics.median(usec / max(count, 1) for count, usec in self.block_costs)
        return Timing(
            count=len(self.latencies),
            seconds=sum(self.latencies),
            p50_ms=quantiles[QUANTILES // 2 - 1] * 1000,
            p99_ms=p99 * 1000,
            cost=cost,
            quantiles_ms=[q * 1000 for q in quantiles],
        )


def timed(function, items, samples, redis_client, db_alias, *, new_block=True, settle=0):
    """
    Call ``function(*item)`` for each item, timing each, into ``samples``; return the results.

    The items make a block of their own, or with ``new_block=False`` join the
    last one. The first ``settle`` items run untimed (their cost is counted).
    """
    results, latencies = [], []
    with counting(redis_client, db_alias) as cost:
        for item in items[:settle]:
            results.append(function(*item))
        for item in items[settle:]:
            start = perf_counter()
            results.append(function(*item))
            latencies.append(perf_counter() - start)
    samples.latencies += latencies
    samples.counted += len(items)
    samples.cost = samples.cost + cost
    if new_block or not samples.blocks:
        samples.blocks.append([])
        samples.block_costs.append([0, 0.0])
    samples.blocks[-1] += latencies
    samples.block_costs[-1][0] += len(items)
    samples.block_costs[-1][1] += cost.redis_usec
    return results


def run_operations(store, user_ids, samples, redis_client, db_alias):
    """Create, load, update and delete a session per user id, into ``samples`` by operation."""
    run_in_turns({None: (store, list(user_ids), db_alias)}, samples={None: samples}, redis_client=redis_client)


def run_in_turns(engines, *, samples, redis_client, order=None):
    """
    Create, load, update and delete a session per user id for each engine, taking turns.

    ``engines`` maps each engine to (its store class or None to activate
    it, its user ids, its database alias). Each operation runs in turns of
    TURN operations per engine (the first SETTLE untimed), in a new random
    order each turn, so that a slow spell of the machine falls on every
    engine alike. One block per
    engine and operation, into ``samples[engine][operation]``.
    """
    keys = {engine: [] for engine in engines}
    steps = [
        ("create", workload.create, lambda engine, i: (engines[engine][1][i],)),
        ("load", workload.load, lambda engine, i: (keys[engine][i], engines[engine][1][i])),
        ("update", workload.update, lambda engine, i: (keys[engine][i], engines[engine][1][i])),
        ("delete", workload.delete, lambda engine, i: (keys[engine][i],)),
    ]
    longest = max(len(user_ids) for _, user_ids, _ in engines.values())
    for op, function, arguments in steps:
        for start in range(0, longest, TURN):
            turn = list(engines)
            if order is not None:
                order.shuffle(turn)
            for engine in turn:
                given, user_ids, db_alias = engines[engine]
                chunk = range(start, min(start + TURN, len(user_ids)))
                if not chunk:
                    continue
                with _active(engine, given) as store:
                    items = [(store, *arguments(engine, i)) for i in chunk]
                    found = timed(
                        function,
                        items,
                        samples[engine][op],
                        redis_client,
                        db_alias,
                        new_block=start == 0,
                        settle=SETTLE if given is None else 0,
                    )
                if op == "create":
                    keys[engine] += found
    for engine, (store, _, _) in engines.items():
        with _active(engine, store) as store:
            if store().exists(keys[engine][0]):
                raise AssertionError("a deleted session still exists")


@contextlib.contextmanager
def _active(engine, store):
    if store is not None:
        yield store
    else:
        with engine.active() as store:
            yield store


def new_samples():
    return {op: Samples() for op in OPERATIONS}


def measure_speed(engines, counts, redis_client, blocks=10):
    """
    Time ``counts[engine]`` of each operation per engine, after a warm-up.

    The engines take turns of TURN operations, in a new random order each
    turn, in each of ``blocks`` blocks, so a slow spell of the machine falls
    on all of them rather than on one. Engines that write to a database take
    their turns after the others, so the disk writes they leave behind slow
    down no Redis engine.
    """
    samples = {engine: new_samples() for engine in engines}
    for engine in engines:
        with engine.active() as store:
            warm_up = new_samples()
            run_operations(store, range(1, WARM_UP + 1), warm_up, redis_client, engine.db_alias)
    order = random.Random(0)
    for group in ([e for e in engines if not e.db_alias], [e for e in engines if e.db_alias]):
        for block in range(blocks if group else 0):
            turns = {}
            for engine in group:
                size = counts[engine] // blocks
                turns[engine] = (None, list(range(block * size + 1, (block + 1) * size + 1)), engine.db_alias)
            run_in_turns(turns, samples=samples, redis_client=redis_client, order=order)
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
