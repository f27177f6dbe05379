"""
Lua scripts that make each session write atomic inside Redis.

Every script touches one key, or keys of one Redis Cluster slot (a session,
its new id, which keys.successor_id() keeps on the old id's slot, and the
record of the move), so each runs on one slot.
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

# Redis's clock, in epoch milliseconds: every time the engine stores or
# judges (login, last active, the absolute timeout) is Redis's, so that app
# servers whose clocks disagree cannot stretch a timeout.
NOW = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function ms(n) return string.format('%.0f', n) end
"""

# KEYS[1] session hash. ARGV: the "last active" refresh interval (ms), the
# absolute age limit (ms). Returns the hash's fields and values, then "m:now"
# and Redis's time. Slides the TTL by m:idle and refreshes m:seen at most once
# per interval. A session past its absolute timeout (the earlier of m:deadline
# and m:created plus the limit) is deleted, and the reply is then {"m:ended",
# "absolute", "m:uid", <user id>}. An id the session moved away from (m:moved;
# with m:next in a renewal's grace period) is returned as it is: it neither
# slides nor refreshes.
LOAD = "#!lua flags=allow-oom" + NOW + """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return fields end
local meta = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'm:' then meta[fields[i]] = fields[i + 1] end
end
fields[#fields + 1] = 'm:now'
fields[#fields + 1] = ms(now)
if meta['m:moved'] then return fields end
local created = tonumber(meta['m:created'] or '0')
local ends = math.min(tonumber(meta['m:deadline'] or '0'), created + tonumber(ARGV[2]))
if ends <= now then
  redis.call('DEL', KEYS[1])
  return {'m:ended', 'absolute', 'm:uid', meta['m:uid'] or ''}
end
if now - tonumber(meta['m:seen'] or '0') >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'm:seen', ms(now))
end
local idle = tonumber(meta['m:idle'] or '0')
if idle > 0 then redis.call('PEXPIRE', KEYS[1], ms(math.min(idle, ends - now))) end
return fields
"""

# KEYS[1] session hash. ARGV: mode ("create" | "update" | "replace"), TTL in
# ms, the absolute age limit in ms, the number n of fields to set, n
# field/value pairs, then fields to delete. "create" starts a session: its
# login time, absolute deadline and the other times from Redis's clock.
# Returns {1, previous owner, version} on success; {0} if "create" found the
# key taken; {-1} if "update" or "replace" found the session gone (ended
# meanwhile, moved to a new id by a privilege change, or past its absolute
# timeout: then it ends now); {-2, sealed new id} if the id has been renewed
# meanwhile.
SAVE = "#!lua" + NOW + """
local mode = ARGV[1]
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local nset = tonumber(ARGV[4])
local exists = redis.call('EXISTS', KEYS[1])
if mode == 'create' then
  if exists == 1 then return {0} end
  local deadline = now + limit
  redis.call('HSET', KEYS[1], 'm:created', ms(now), 'm:deadline', ms(deadline),
    'm:issued', ms(now), 'm:seen', ms(now), 'm:ver', '1', unpack(ARGV, 5, 4 + 2 * nset))
  redis.call('PEXPIRE', KEYS[1], ms(math.min(ttl, limit)))
  return {1, '', 1}
end
if exists == 0 then return {-1} end
local meta = redis.call('HMGET', KEYS[1], 'm:next', 'm:uid', 'm:created', 'm:deadline')
if meta[1] then return {-2, meta[1]} end
local ends = math.min(tonumber(meta[4] or '0'), tonumber(meta[3] or '0') + limit)
if ends <= now then
  redis.call('DEL', KEYS[1])
  return {-1}
end
-- Every read before the first write.
local stale = {}
if mode == 'replace' then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 'd:' then stale[#stale + 1] = field end
  end
end
for i = 5 + 2 * nset, #ARGV do stale[#stale + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'm:seen', ms(now), unpack(ARGV, 5, 4 + 2 * nset))
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
local version = redis.call('HINCRBY', KEYS[1], 'm:ver', 1)
redis.call('PEXPIRE', KEYS[1], ms(math.min(ttl, ends - now)))
return {1, meta[2] or '', version}
"""

# KEYS[1] the session's current key, KEYS[2] the key of its new id (the same
# slot: see keys.successor_id()), KEYS[3] the old id's record of the move (the
# same slot). ARGV: the version the caller loaded, "1" to continue the session
# (re-authentication, a password change, a renewal: the old id must still be
# live, and the login time and absolute deadline carry over) or "0" to start
# anew (a login: a new absolute timeout, and an old id that is gone is no
# obstacle), the grace in ms during which the old id keeps working (0: it ends
# now), the sealed new id for that grace, the new id's name, how long (ms) the
# record of a move without grace lasts, the TTL in ms, the absolute age limit
# in ms, the number n of fields, n field/value pairs (the whole session, as the
# caller has it).
#
# In a grace period the old key holds only m:next, m:moved (the new name) and
# m:uid; without one it is deleted, and KEYS[3] holds the new name (m:moved)
# for a short while. Either way, whatever ends the session through the old id, having
# read the index or loaded the session before the move, follows it to the new
# one. Returns {1, owner} on success; {0} if the new key is taken; {-1} if a
# continued session is gone; {-2, sealed id} if the old id has been renewed
# meanwhile; {-3} if the session was written since the caller loaded it (load
# it again and retry).
MOVE = "#!lua" + NOW + """
if redis.call('EXISTS', KEYS[2]) == 1 then return {0} end
local limit = tonumber(ARGV[8])
local old = redis.call('HMGET', KEYS[1], 'm:ver', 'm:next', 'm:created', 'm:deadline', 'm:uid')
local live = old[1] ~= false
if old[2] then return {-2, old[2]} end
if live and old[1] ~= ARGV[1] then return {-3} end
local created, deadline = now, now + limit
if ARGV[2] == '1' then
  if not live then return {-1} end
  created, deadline = tonumber(old[3] or '0'), tonumber(old[4] or '0')
end
local ends = math.min(deadline, created + limit)
if ends <= now then
  redis.call('DEL', KEYS[1])
  return {-1}
end
local nset = tonumber(ARGV[9])
redis.call('HSET', KEYS[2], 'm:created', ms(created), 'm:deadline', ms(deadline),
  'm:issued', ms(now), 'm:seen', ms(now), 'm:ver', '1', unpack(ARGV, 10, 9 + 2 * nset))
redis.call('PEXPIRE', KEYS[2], ms(math.min(tonumber(ARGV[7]), ends - now)))
if live then
  redis.call('DEL', KEYS[1])
  local grace = tonumber(ARGV[3])
  if grace > 0 then
    redis.call('HSET', KEYS[1], 'm:next', ARGV[4], 'm:moved', ARGV[5], 'm:uid', old[5] or '')
    redis.call('PEXPIRE', KEYS[1], ms(math.min(grace, ends - now)))
  else
    redis.call('HSET', KEYS[3], 'm:moved', ARGV[5])
    redis.call('PEXPIRE', KEYS[3], ARGV[6])
  end
end
return {1, old[5] or ''}
"""

# KEYS[1] a session hash, or an id in its grace period, that a user's index
# names; KEYS[2] that id's record of a move. ARGV: the user's id ("" for
# whoever it belongs to). Delete KEYS[1] if it is theirs. Returns {1 if
# deleted else 0, the id it replaced (m:prev) or "", 1 if it was a session
# (0 for an id in its grace period), the name the session moved to or ""}.
DELETE_OWNED = """#!lua flags=allow-oom
local meta = redis.call('HMGET', KEYS[1], 'm:uid', 'm:prev', 'm:moved')
local moved = meta[3] or redis.call('HGET', KEYS[2], 'm:moved') or ''
if not meta[1] or (ARGV[1] ~= '' and meta[1] ~= ARGV[1]) then return {0, '', 0, moved} end
redis.call('DEL', KEYS[1])
return {1, meta[2] or '', meta[3] and 0 or 1, moved}
"""

# KEYS[1] user index: a sorted set of session names scored by when each was
# filed (Redis's clock, ms). ARGV: the most sessions the user may have (0: no
# limit), how long an entry can outlive its filing (the absolute age limit
# plus a margin, ms), the name to file. Drops entries past that horizon and
# lets the index expire that long after its newest entry. Returns 1 if the
# index holds more entries than the limit: some may be of sessions that ended
# early (logout, idle timeout), which only the caller can tell, across keys.
INDEX_ADD = "#!lua" + NOW + """
local horizon = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ms(now - horizon))
redis.call('ZADD', KEYS[1], ms(now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ms(horizon))
local limit = tonumber(ARGV[1])
if limit > 0 and redis.call('ZCARD', KEYS[1]) > limit then return 1 end
return 0
"""

# KEYS[1] user index. ARGV: the horizon (ms) as for INDEX_ADD. Drops entries
# past it; returns Redis's time, the number n of entries dropped, their n
# names, then every remaining entry and its score, oldest first.
INDEX_READ = "#!lua flags=allow-oom" + NOW + """
local cut = '(' .. ms(now - tonumber(ARGV[1]))
local dropped = redis.call('ZRANGE', KEYS[1], '-inf', cut, 'BYSCORE')
if #dropped > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cut) end
local reply = {ms(now), #dropped}
for _, name in ipairs(dropped) do reply[#reply + 1] = name end
for _, item in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')) do
  reply[#reply + 1] = item
end
return reply
"""

# KEYS[1] user index. ARGV: name/score pairs, as INDEX_READ returned them.
# Drop each entry whose score is still the one read; returns how many.
INDEX_PRUNE = """#!lua flags=allow-oom
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
"""

SHAS = {}


def register(script):
    """Make ``script`` runnable by execute(); return it."""
    SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    return script


for _script in (LOAD, SAVE, MOVE, DELETE_OWNED, INDEX_ADD, INDEX_READ, INDEX_PRUNE):
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
