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

# KEYS[1] counter. ARGV: window (s), limit, cool-off (s). Reserve one attempt:
# at the limit, refuse it and return {0, ttl}; else count it as HIT does and
# return {count, ttl}. Checking and counting in one step is what keeps
# parallel attempts from all getting through a check that none has counted yet.
RESERVE = """#!lua
local limit = tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or '0') >= limit then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    ttl = tonumber(ARGV[3])
  end
  return {0, ttl}
end
local count = redis.call('INCR', KEYS[1])
if count == limit then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
elseif count == 1 or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('TTL', KEYS[1])}
"""

# KEYS[1] counter. Give back one reserved attempt; the last one takes the key
# with it, so that no count is left without its TTL. Returns the count left.
RELEASE = """#!lua flags=allow-oom
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count <= 1 then
  redis.call('DEL', KEYS[1])
  return 0
end
return redis.call('DECR', KEYS[1])
"""

for _script in (HIT, RESERVE, RELEASE):
    scripts.register(_script)


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

    def reserve_call(self):
        return scripts.Eval(RESERVE, [self.key], self._args())

    def release_call(self):
        return scripts.Eval(RELEASE, [self.key], [])


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
    any is at its limit, give back what the others reserved and return (for
    how many seconds the refusing ones block, None).
    """
    results = _execute([c.reserve_call() for c in counters])
    refused = [ttl for count, ttl in results if count == 0]
    if not refused:
        return 0, [count for count, _ in results]
    granted = [c for c, (count, _) in zip(counters, results) if count]
    if granted:
        release(*granted)
    return max(max(refused), 1), None


def release_calls(*counters):
    """Return the calls that give back an attempt reserved on each of ``counters``."""
    return [c.release_call() for c in counters]


def release(*counters):
    """Give back an attempt reserved on each of ``counters``, now."""
    _execute(release_calls(*counters))
