"""What clearsessions costs with this engine: pruning the per-user session indexes."""

import dataclasses
import secrets
import time
from time import perf_counter

from sessiondemo.sessions import codec, index
from sessiondemo.sessions.keys import session_redis_key, user_index_key

from .counters import Cost, counting

LIVE, EXPIRED, ENDED = 5, 3, 2  # of each user's ten index entries
USERS_PER_PIPELINE = 500
HOUR_MS = 3_600_000


@dataclasses.dataclass
class PruneRun:
    """One clear_expired() over ``entries`` index entries."""

    label: str
    entries: int
    pruned: int
    indexes: int
    seconds: float
    cost: Cost

    def per_million(self, value):
        """Return ``value`` scaled linearly to a million index entries."""
        return value * 1_000_000 / self.entries


def populate(redis_client, users):
    """
    Give each of ``users`` users ten index entries: five live sessions, three
    past the index's horizon, two whose session is gone (deleted, expired early).
    """
    now_ms = int(time.time() * 1000)
    for first in range(1, users + 1, USERS_PER_PIPELINE):
        pipe = redis_client.pipeline(transaction=False)
        for user_id in range(first, min(first + USERS_PER_PIPELINE, users + 1)):
            add_user(pipe, user_id, now_ms)
        pipe.execute()


def add_user(pipe, user_id, now_ms):
    """Queue one user's index and live sessions, laid out as the engine lays them out."""
    horizon_ms = index.horizon_ms()
    live_until = now_ms + 12 * HOUR_MS
    scores = {}
    for kind, how_many in (("live", LIVE), ("expired", EXPIRED), ("ended", ENDED)):
        for _ in range(how_many):
            name = secrets.token_hex(2) + secrets.token_urlsafe(16)[:22]
            filed = {
                "live": now_ms - HOUR_MS,
                "expired": now_ms - horizon_ms - HOUR_MS,
                "ended": now_ms - HOUR_MS,
            }[kind]
            scores[name] = filed
            if kind == "live":
                value = codec.Value(
                    data=b"{}", user_id=str(user_id), created_ms=filed, deadline_ms=live_until,
                    issued_ms=filed, idle_ms=1_800_000,
                )
                head, tail = codec.encode(name, value)
                pipe.set(session_redis_key(name), head + codec.encode_times(value) + tail)
                pipe.pexpireat(session_redis_key(name), live_until)
    key = user_index_key(user_id)
    pipe.zadd(key, scores)
    pipe.pexpireat(key, live_until)


def measure_clearsessions(store, redis_client, users, repeats=3):
    """
    Time clear_expired() on ``users`` x 10 entries (half stale), then again with none stale.

    Done ``repeats`` times on fresh data; return the median run of each kind.
    """
    entries = users * (LIVE + EXPIRED + ENDED)
    first, second = [], []
    for _ in range(repeats):
        redis_client.flushall()
        populate(redis_client, users)
        first.append(prune_once(store, redis_client, "half stale", entries))
        second.append(prune_once(store, redis_client, "nothing stale (the next run)", users * LIVE))
    redis_client.flushall()
    return [median_run(first), median_run(second)]


def median_run(runs):
    """Return the run with the median wall time."""
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def prune_once(store, redis_client, label, entries):
    """Run clear_expired() once and return what it did and cost."""
    with counting(redis_client) as cost:
        start = perf_counter()
        report = store.clear_expired()
        seconds = perf_counter() - start
    return PruneRun(label, entries, report.entries_pruned, report.indexes_scanned, seconds, cost)
