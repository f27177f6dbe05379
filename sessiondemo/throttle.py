"""
Counters with a time window in the sessions Redis, for throttling.

Each counter is one key under ``<prefix>t:``, so it expires by itself and
never outlives its window. Counting is one round trip however many counters.
"""

from sessiondemo.sessions import scripts
from sessiondemo.sessions.conf import key_prefix
from sessiondemo.sessions.connection import get_client, store_errors

# KEYS[1] counter. ARGV: window (s), limit, cool-off (s). Count one more
# event; the first starts the window; reaching the limit restarts the TTL at
# the cool-off. Returns {count, ttl}.
HIT = """#!lua
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if count == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {count, redis.call('TTL', KEYS[1])}
"""
scripts.register(HIT)


class Counter:
    """A named count of events in a window, blocking at ``limit`` for ``cool_off`` seconds."""

    def __init__(self, name, *, limit, window, cool_off=None):
        self.key = f"{key_prefix()}t:{name}"
        self.limit = limit
        self.window = window
        self.cool_off = cool_off or window

    def hit_call(self):
        return scripts.Eval(HIT, [self.key], [self.window, self.limit, self.cool_off])


def hit(*counters):
    """Count one event on each of ``counters``; return their (count, ttl) pairs."""
    with store_errors():
        return [tuple(r) for r in scripts.execute(get_client(), [c.hit_call() for c in counters])]


def check(*counters):
    """
    Return how long ``counters`` block (the longest, 0 if none is at its limit) and their counts.

    One round trip, and nothing counted.
    """
    calls = []
    for counter in counters:
        calls += [scripts.Command(("GET", counter.key)), scripts.Command(("TTL", counter.key))]
    with store_errors():
        results = scripts.execute(get_client(), calls)
    counts = [int(count or 0) for count in results[::2]]
    blocked = [
        ttl
        for counter, count, ttl in zip(counters, counts, results[1::2])
        if count >= counter.limit and ttl > 0
    ]
    return max(blocked, default=0), counts


def reset(*counters):
    """Forget ``counters``."""
    with store_errors():
        scripts.execute(get_client(), [scripts.Command(("DEL", c.key)) for c in counters])
