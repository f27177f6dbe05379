"""
Counters with a time window in the sessions Redis, for throttling.

Each counter is one key under ``<prefix>t:``, so it expires by itself and
never outlives its window (or its cool-off). Counting is one round trip
however many counters; a reservation and its release are plain commands
(INCR and DECR number the attempts atomically, which is all they need), so
that a login costs Redis no script for its throttle.
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

    def _args(self):
        return [self.window, self.limit, self.cool_off]

    def hit_call(self):
        return scripts.Eval(HIT, [self.key], self._args())

    def reserve_calls(self):
        """Return the commands that count one more attempt; their replies are (count, _, ttl)."""
        # INCR is atomic: of parallel attempts, only those it numbers up to
        # the limit are granted; the others give their count back (reserve()).
        # EXPIRE NX starts the window with the first count and leaves it alone after.
        return [
            scripts.Command(("INCR", self.key)),
            scripts.Command(("EXPIRE", self.key, self.window, "NX")),
            scripts.Command(("TTL", self.key)),
        ]

    def release_calls(self):
        """Return the commands that give back one reserved attempt."""
        # A window that ended since the reservation leaves DECR a new key at
        # -1: EXPIRE NX gives it the window, so that no counter outlives one.
        return [
            scripts.Command(("DECR", self.key)),
            scripts.Command(("EXPIRE", self.key, self.window, "NX")),
        ]


def _execute(calls):
    with store_errors():
        return scripts.execute(get_client(), calls)


def hit(*counters):
    """Count one event on each of ``counters``; return their (count, ttl) pairs."""
    return [tuple(r) for r in _execute([c.hit_call() for c in counters])]


def reserve(*counters):
    """
    Reserve one attempt on every one of ``counters``, or on none.

    Return (0, the count of each with this attempt) when all grant it. When
    any is at its limit, give back what this attempt counted and return (for
    how many seconds the refusing ones block, None). The attempt that reaches
    a counter's limit starts its cool-off.
    """
    replies = _execute([call for c in counters for call in c.reserve_calls()])
    results = [(replies[i], replies[i + 2]) for i in range(0, len(replies), 3)]
    counts = [count for count, _ in results]
    refused = [max(ttl, 1) for c, (count, ttl) in zip(counters, results) if count > c.limit]
    if refused:
        release(*counters)
        return max(refused), None
    locking = [c for c, count in zip(counters, counts) if count == c.limit]
    if locking:
        _execute([scripts.Command(("EXPIRE", c.key, c.cool_off)) for c in locking])
    return 0, counts


def release_calls(*counters):
    """Return the calls that give back an attempt reserved on each of ``counters``."""
    return [call for c in counters for call in c.release_calls()]


def release(*counters):
    """Give back an attempt reserved on each of ``counters``, now."""
    _execute(release_calls(*counters))
