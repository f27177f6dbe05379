"""
Lua scripts that make each session write atomic inside Redis.

Every script touches exactly one key, so each runs on one Redis Cluster slot.
They are sent with EVALSHA; a server that has lost its script cache (restart,
failover, SCRIPT FLUSH) answers NOSCRIPT and the command is sent again with
EVAL, which also caches the script.

Each script starts with a shebang line, which makes a Redis at maxmemory
(with ``noeviction``) refuse a script that may grow memory before it runs,
instead of failing it halfway: a full Redis writes nothing. Scripts that only
read, slide a TTL or free memory carry ``flags=allow-oom`` and keep working.
"""

import hashlib
from typing import NamedTuple

from redis.exceptions import NoScriptError

# KEYS[1] session hash. ARGV: now (epoch seconds), the "last active" refresh
# interval (s), the absolute age limit (s). Returns the hash's fields and
# values; slides its TTL by its m:idle; refreshes m:seen at most once per
# interval. A session past its absolute age is deleted, and the reply is then
# {"m:ended", "absolute", "m:uid", <user id>}.
LOAD = """#!lua flags=allow-oom
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return fields end
local meta = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'm:' then meta[fields[i]] = fields[i + 1] end
end
local now = tonumber(ARGV[1])
local left_ms = (tonumber(meta['m:created'] or ARGV[1]) + tonumber(ARGV[3]) - now) * 1000
if left_ms <= 0 then
  redis.call('DEL', KEYS[1])
  return {'m:ended', 'absolute', 'm:uid', meta['m:uid'] or ''}
end
if now - tonumber(meta['m:seen'] or '0') >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'm:seen', ARGV[1])
end
local idle_ms = tonumber(meta['m:idle'] or '0')
if idle_ms > 0 and not meta['m:retired'] then
  redis.call('PEXPIRE', KEYS[1], math.floor(math.min(idle_ms, left_ms)))
end
return fields
"""

# KEYS[1] session hash. ARGV: mode ("create" | "update" | "replace"), ttl in
# ms, the number n of fields to set, n field/value pairs, then fields to delete.
# Returns {1, previous owner} on success, {0} if "create" found the key taken,
# {-1} if "update" or "replace" found it gone (a logout or a revocation
# deleted it meanwhile).
SAVE = """#!lua
local exists = redis.call('EXISTS', KEYS[1])
local mode = ARGV[1]
if mode == 'create' then
  if exists == 1 then return {0} end
elseif exists == 0 then
  return {-1}
end
-- Every read before the first write: a script that fails midway keeps its
-- earlier writes, and a hash must never be left without its TTL.
local previous_owner = redis.call('HGET', KEYS[1], 'm:uid') or ''
local retired = redis.call('HEXISTS', KEYS[1], 'm:retired') == 1
local stale = {}
if mode == 'replace' then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 'd:' then stale[#stale + 1] = field end
  end
end
local nset = tonumber(ARGV[3])
local first_del = 4 + 2 * nset
for i = first_del, #ARGV do stale[#stale + 1] = ARGV[i] end
if nset > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + 2 * nset))
end
-- A retired id keeps its short grace period, whatever a late save asks.
if not retired then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
return {1, previous_owner}
"""

# KEYS[1] session hash whose id was renewed. ARGV: grace in ms. Let it live
# only that long, no longer sliding with use, and return its owner. An id
# retired already keeps the grace it has.
RETIRE = """#!lua
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('HEXISTS', KEYS[1], 'm:retired') == 1 then
  return redis.call('HGET', KEYS[1], 'm:uid')
end
redis.call('HSET', KEYS[1], 'm:retired', '1', 'm:idle', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGET', KEYS[1], 'm:uid')
"""

# KEYS[1] session hash. Delete it and return the user id it belonged to.
DELETE_BODY = """
local uid = redis.call('HGET', KEYS[1], 'm:uid')
redis.call('DEL', KEYS[1])
return uid
"""
DELETE = "#!lua flags=allow-oom" + DELETE_BODY
# The same, for the id a save moves away from: refused with the save on a
# full Redis, so that the session is neither moved nor lost.
DELETE_MOVED = "#!lua" + DELETE_BODY

# KEYS[1] user index (sorted set of session digests scored by the latest time
# each session can live to, in epoch ms). ARGV: now in ms, the most sessions
# the user may have (0: no limit), then the score and digest to file. Drops
# expired members and lets the index expire with its last session. Returns 1
# if the index holds more members than the limit: some may be sessions that
# ended early (idle timeout), which only the caller can tell, across keys.
INDEX_ADD = """#!lua
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
local limit = tonumber(ARGV[2])
if limit > 0 and redis.call('ZCARD', KEYS[1]) > limit then return 1 end
return 0
"""

SHAS = {}


def register(script):
    """Make ``script`` runnable by execute(); return it."""
    SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    return script


for _script in (LOAD, SAVE, DELETE, DELETE_MOVED, RETIRE, INDEX_ADD):
    register(_script)


class Eval(NamedTuple):
    """A script to run on ``keys`` with ``args``."""

    script: str
    keys: list
    args: list


class Command(NamedTuple):
    """A plain Redis command."""

    args: tuple


def execute(client, calls):
    """
    Run ``calls`` (Eval and Command items) in one round trip and return their results.

    Errors other than NOSCRIPT are raised after the whole batch has run.
    """
    if len(calls) == 1 and isinstance(calls[0], Eval):
        return [_run_one(client, calls[0])]
    pipe = client.pipeline(transaction=False)
    for call in calls:
        if isinstance(call, Eval):
            # The command itself: a cluster pipeline has no evalsha() and eval() methods.
            pipe.execute_command("EVALSHA", SHAS[call.script], *_keys_and_args(call))
        else:
            pipe.execute_command(*call.args)
    results = pipe.execute(raise_on_error=False)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        # Commands that got NOSCRIPT did not run, so running them again is safe.
        retry = client.pipeline(transaction=False)
        for i in missing:
            call = calls[i]
            retry.execute_command("EVAL", call.script, *_keys_and_args(call))
        for i, result in zip(missing, retry.execute(raise_on_error=False)):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _keys_and_args(call):
    return (len(call.keys), *call.keys, *call.args)


def _run_one(client, call):
    """Run one script without a pipeline's bookkeeping."""
    try:
        return client.evalsha(SHAS[call.script], len(call.keys), *call.keys, *call.args)
    except NoScriptError:
        return client.eval(call.script, len(call.keys), *call.keys, *call.args)
