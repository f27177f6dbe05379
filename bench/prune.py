"""
What clearsessions costs with this engine: pruning the per-user session indexes.

Measured at three index sizes, in a database that holds nothing else and
again beside millions of unrelated keys (what a Redis shared with a cache
holds), for time and for the client's memory.
"""

import dataclasses
import secrets
import statistics
import time
import tracemalloc
from time import perf_counter

from sessiondemo.sessions import codec, index
from sessiondemo.sessions.conf import key_prefix
from sessiondemo.sessions.keys import index_buckets_key, session_redis_key, user_index_key

from .counters import Cost, counting

LIVE, EXPIRED, ENDED = 5, 3, 2  # of each user's ten index entries
USERS_PER_PIPELINE = 500
KEYS_PER_UNLINK = 5000
HOUR_MS = 3_600_000
UNRELATED_PREFIX = "unrelated"
SIZES = (0.25, 0.5, 1)  # of the users asked for


@dataclasses.dataclass
class PruneRun:
    """One clear_expired() over ``entries`` index entries, beside ``unrelated`` other keys."""

    label: str
    entries: int
    pruned: int
    indexes: int
    seconds: float
    cost: Cost
    unrelated: int = 0
    peak_bytes: int | None = None  # the client's tracemalloc peak, from a run of its own


def populate(redis_client, users):
    """
    Give each of ``users`` users ten index entries: five live sessions, three
    past the index's horizon, two whose session is gone (deleted, expired early).

    Return the keys written (a bucket, shared by neighbouring users, once per user).
    """
    now_ms = int(time.time() * 1000)
    written = []
    for first in range(1, users + 1, USERS_PER_PIPELINE):
        pipe = redis_client.pipeline(transaction=False)
        for user_id in range(first, min(first + USERS_PER_PIPELINE, users + 1)):
            written += add_user(pipe, user_id, now_ms)
        pipe.execute()
    return [*written, index_buckets_key()]


def add_user(pipe, user_id, now_ms):
    """Queue one user's index and live sessions, laid out as the engine does; return their keys."""
    horizon_ms = index.horizon_ms()
    live_until = now_ms + 12 * HOUR_MS
    entries = []
    keys = []
    for kind, how_many in (("live", LIVE), ("expired", EXPIRED), ("ended", ENDED)):
        for _ in range(how_many):
            name = secrets.token_hex(2) + secrets.token_urlsafe(16)[:22]
            filed = {
                "live": now_ms - HOUR_MS,
                "expired": now_ms - horizon_ms - HOUR_MS,
                "ended": now_ms - HOUR_MS,
            }[kind]
            entries.append((name, filed))
            if kind == "live":
                key = session_redis_key(name)
                value = codec.Value(
                    data=b"{}", user_id=str(user_id), created_ms=filed, deadline_ms=live_until,
                    issued_ms=filed, idle_ms=1_800_000,
                )
                head, tail = codec.encode(name, value)
                pipe.set(key, head + codec.encode_times(value) + tail)
                pipe.pexpireat(key, live_until)
                keys.append(key)
    # The user's fields in an index bucket (an entry each and the count), and
    # the bucket in the list clearsessions walks.
    bucket = user_index_key(user_id)
    fields = {f"{user_id}|{name}": filed // 1000 for name, filed in entries}
    pipe.hset(bucket, mapping={**fields, f"{user_id}|": len(entries)})
    pipe.pexpireat(bucket, live_until)
    pipe.sadd(index_buckets_key(), bucket)
    return [*keys, bucket]


def fill_unrelated(redis_client, count):
    """Add ``count`` small string keys that are no session's, the fastest way this Redis allows."""
    try:
        redis_client.execute_command("DEBUG", "POPULATE", count, UNRELATED_PREFIX)
    except Exception:  # noqa: BLE001 - DEBUG is off on this server: the slower way
        script = (
            "for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do "
            f"redis.call('SET', '{UNRELATED_PREFIX}:' .. i, 'x') end"
        )
        for first in range(0, count, 50_000):
            redis_client.eval(script, 0, first, min(first + 50_000, count) - 1)


def remove_sessions(redis_client, keys, unrelated):
    """Delete ``keys``, and any other key under the engine's prefix, leaving the unrelated ones."""
    for first in range(0, len(keys), KEYS_PER_UNLINK):
        redis_client.unlink(*keys[first : first + KEYS_PER_UNLINK])
    if redis_client.dbsize() > unrelated:
        # Keys the engine wrote that populate() did not (a SCAN over everything).
        for key in redis_client.scan_iter(match=f"{key_prefix()}*", count=1000):
            redis_client.unlink(key)


def measure_clearsessions(store, redis_client, users, repeats, unrelated, progress):
    """
    Time clear_expired() on a quarter, half and all of ``users`` x 10 entries (half stale).

    The full size runs ``repeats`` times on fresh data (the median is kept),
    the first followed by a run with nothing stale left. The smallest and the full
    size run once more under tracemalloc, for the client's peak memory. All
    of it twice: in an empty database, then beside ``unrelated`` unrelated
    keys. Return the runs.
    """
    runs = []
    for background in (0, unrelated):
        redis_client.flushall()
        if background:
            started = perf_counter()
            fill_unrelated(redis_client, background)
            progress(f"    {background:,} unrelated keys added in {perf_counter() - started:.1f} s")
        for share in SIZES:
            size = int(users * share)
            first, second = [], []
            for repeat in range(repeats if share == 1 else 1):
                keys = populate(redis_client, size)
                first.append(prune_once(store, redis_client, "half stale", size, background))
                if share == 1 and repeat == 0:
                    again = prune_once(store, redis_client, "nothing stale", size, background)
                    second.append(again)
                remove_sessions(redis_client, keys, background)
            run = median_run(first)
            if share in (SIZES[0], SIZES[-1]):
                keys = populate(redis_client, size)
                run.peak_bytes = traced_peak(store.clear_expired)
                remove_sessions(redis_client, keys, background)
            runs += [run, *second]
            progress(f"    {size * 10:,} entries beside {background:,} keys: {run.seconds:.1f} s")
    redis_client.flushall()
    return runs


def median_run(runs):
    """Return the run with the median wall time."""
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def prune_once(store, redis_client, label, users, unrelated):
    """Run clear_expired() once and return what it did and cost; check it pruned what it should."""
    stale = label == "half stale"
    entries = users * (LIVE + EXPIRED + ENDED if stale else LIVE)
    with counting(redis_client) as cost:
        start = perf_counter()
        report = store.clear_expired()
        seconds = perf_counter() - start
    expected = users * (EXPIRED + ENDED) if stale else 0
    if report.entries_pruned != expected:
        raise AssertionError(
            f"clear_expired() pruned {report.entries_pruned} entries, not {expected}: "
            "bench/prune.py's populate() no longer lays the index out as the engine does"
        )
    return PruneRun(
        label, entries, report.entries_pruned, report.indexes_scanned, seconds, cost, unrelated
    )


def traced_peak(function):
    """Call ``function``; return the most bytes Python allocated meanwhile beyond what it had."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        function()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def half_stale(runs, unrelated):
    """Return the half-stale runs beside ``unrelated`` keys, smallest first."""
    found = [run for run in runs if run.label == "half stale" and run.unrelated == unrelated]
    return sorted(found, key=lambda run: run.entries)


def at_a_million(points):
    """Return where the least-squares line through ``points`` (entries, value) is at a million."""
    if len(points) < 2:
        ((entries, value),) = points
        return value * 1_000_000 / entries
    line = statistics.linear_regression(*zip(*points))
    return line.intercept + line.slope * 1_000_000
