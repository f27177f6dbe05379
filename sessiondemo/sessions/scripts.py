"""
Lua scripts that make each session write atomic inside Redis.

Every script touches one key, or keys of one Redis Cluster slot (a session,
its new id, which keys.successor_id() keeps on the old id's slot, and the
record of the move), so each runs on one slot; INDEX_SWEEP, which only runs
on one Redis, says so (no-cluster).
They are sent with EVALSHA; a server that has lost its script cache (restart,
failover, SCRIPT FLUSH) answers NOSCRIPT and the command is sent again with
EVAL, which also caches the script.

Each script starts with a shebang line, which makes a Redis at maxmemory
(with ``noeviction``) refuse a script that may grow memory before it runs,
instead of failing it halfway: a full Redis writes nothing. Scripts that only
read or free memory carry ``flags=allow-oom`` and keep working. Reads are no
script at all (GETEX; see reads.py).
"""

import hashlib
from typing import NamedTuple

from redis.exceptions import NoScriptError

from .connection import arun_packed, is_cluster, run_packed, run_packed_batches

# Redis's clock, in epoch milliseconds: every time the engine stores or
# judges (login, the absolute timeout) is Redis's, so that app servers whose
# clocks disagree cannot stretch a timeout.
NOW = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function ms(n) return string.format('%.0f', n) end
-- A TTL for SET, which refuses 0: a session already past its expiry lives 1 ms.
local function px(n) return ms(math.max(n, 1)) end
"""

# Readers of a session's string (codec.py has the layout): its times, its
# owner, the id it replaced, the name an id in its grace period leads to.
# Each script defines only those it calls: Redis runs the whole text every time.
TIMES = """
local function times(value) return struct.unpack('>I6I6', value, 10) end
"""
OWNER = """
local function owner(value)
  if string.sub(value, 1, 1) == 't' then
    local length = string.byte(value, 8)
    return string.sub(value, 9, 8 + length)
  end
  local length = string.byte(value, 37)
  return string.sub(value, 38, 37 + length)
end
"""
PREVIOUS = """
local function previous(value)
  local at = 38 + string.byte(value, 37)
  at = at + 1 + string.byte(value, at)
  at = at + 2 + struct.unpack('>I2', value, at)
  return string.sub(value, at + 1, at + string.byte(value, at))
end
local function moved_to(stub)
  local at = 9 + string.byte(stub, 8)
  return string.sub(stub, at, at + 25)
end
"""

# KEYS[1] a session's key. ARGV: the version (4 bytes, drawn anew by every
# write) the caller loaded, the new value whole (its times as loaded: they
# never change under one key), its TTL in ms (the caller capped it at the
# absolute timeout, by the Redis time its read returned). Write the value if
# the session is still there at that version. Returns {1} on success; {-1} if
# the session is gone (ended meanwhile, or moved to a new id by a privilege
# change); {-2, stub} if its id has been renewed meanwhile; {-3, current
# value} if it was written since the caller loaded it (the caller merges its
# changes into that and tries again).
SAVE = """#!lua
local current = redis.call('GET', KEYS[1])
if not current then return {-1} end
local kind = string.sub(current, 1, 1)
if kind == 't' then return {-2, current} end
if kind ~= 's' then return {-1} end
if string.sub(current, 28, 31) ~= ARGV[1] then return {-3, current} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1}
"""

# KEYS[1] a session's key. ARGV: the version the caller loaded, or "" to
# replace whatever the session holds; the new value's kind and tag; the rest
# of it after the times; the TTL in ms; the absolute age limit in ms. SAVE for
# a caller that does not know the session's times (it created or moved the
# session in this request, or cleared it): they are kept from what Redis
# holds, and the absolute timeout is judged by Redis's clock. Returns as SAVE
# does, with the session's owner before the write after the 1; {-1} also for
# a session past its absolute timeout, which ends now.
SAVE_KEEPING_TIMES = "#!lua" + NOW + TIMES + OWNER + """
local current = redis.call('GET', KEYS[1])
if not current then return {-1} end
local kind = string.sub(current, 1, 1)
if kind == 't' then return {-2, current} end
if kind ~= 's' then return {-1} end
if ARGV[1] ~= '' and string.sub(current, 28, 31) ~= ARGV[1] then return {-3, current} end
local created, deadline = times(current)
local ends = math.min(deadline, created + tonumber(ARGV[5]))
if ends <= now then
  redis.call('DEL', KEYS[1])
  return {-1}
end
local value = ARGV[2] .. string.sub(current, 10, 27) .. ARGV[3]
redis.call('SET', KEYS[1], value, 'PX', px(math.min(tonumber(ARGV[4]), ends - now)))
return {1, owner(current)}
"""

# KEYS[1] the session's current key, KEYS[2] the key of its new id (the same
# slot: see keys.successor_id()), KEYS[3] the old id's record of the move (the
# same slot). ARGV: the version (4 bytes) the caller loaded, or "" if it has
# none; "1" to continue the session (re-authentication, a password change, a
# renewal: the old id must still be live, and the login time and absolute
# deadline carry over) or "0" to start anew (a login: a new absolute timeout,
# and an old id that is gone is no obstacle); the grace in ms during which the
# old id keeps working (0: it ends now); the sealed new id for that grace; the
# new id's name; how long (ms) the record of a move without grace lasts; the
# new value's kind and tag; the rest of it after the times; the TTL in ms; the
# absolute age limit in ms.
#
# In a grace period the old key becomes a stub (codec.py) that leads to the
# new id; without one it is deleted, and KEYS[3] holds the new name for a
# short while. Either way, whatever ends the session through the old id,
# having read the index or loaded the session before the move, follows it to
# the new one. Returns {1, owner} on success; {0} if the new key is taken;
# {-1} if a continued session is gone; {-2, stub} if the old id has been
# renewed meanwhile; {-3, current value} if the session was written since the
# caller loaded it (merge and retry).
MOVE = "#!lua" + NOW + TIMES + OWNER + """
if redis.call('EXISTS', KEYS[2]) == 1 then return {0} end
local limit = tonumber(ARGV[10])
local current = redis.call('GET', KEYS[1])
local kind = current and string.sub(current, 1, 1)
if kind == 't' then return {-2, current} end
local live = kind == 's'
if live and ARGV[1] ~= '' and string.sub(current, 28, 31) ~= ARGV[1] then return {-3, current} end
local created, deadline = now, now + limit
if ARGV[2] == '1' then
  if not live then return {-1} end
  created, deadline = times(current)
end
local ends = math.min(deadline, created + limit)
if ends <= now then
  redis.call('DEL', KEYS[1])
  return {-1}
end
local value = ARGV[7] .. struct.pack('>I6I6I6', created, deadline, now) .. ARGV[8]
redis.call('SET', KEYS[2], value, 'PX', px(math.min(tonumber(ARGV[9]), ends - now)))
if not live then return {1, ''} end
local who = owner(current)
local grace = tonumber(ARGV[3])
if grace > 0 then
  local untilt = math.min(now + grace, ends)
  local stub = 't' .. struct.pack('>I6', untilt) .. string.char(#who) .. who .. ARGV[5] .. ARGV[4]
  redis.call('SET', KEYS[1], stub, 'PX', px(untilt - now))
else
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
end
return {1, who}
"""

# KEYS[1] a session's key (or that of an id in its grace period) that a user's
# index names; KEYS[2] that id's record of a move. ARGV: the user's id ("" for
# whoever it belongs to). Delete KEYS[1] if it is theirs. Returns {1 if
# deleted else 0, the id it replaced or "", 1 if it was a session (0 for an id
# in its grace period), the name the session moved to or ""}.
DELETE_OWNED = "#!lua flags=allow-oom" + OWNER + PREVIOUS + """
local current = redis.call('GET', KEYS[1])
local moved = redis.call('GET', KEYS[2]) or ''
if not current then return {0, '', 0, moved} end
local kind = string.sub(current, 1, 1)
if kind ~= 's' and kind ~= 't' then return {0, '', 0, moved} end
if ARGV[1] ~= '' and owner(current) ~= ARGV[1] then return {0, '', 0, moved} end
redis.call('DEL', KEYS[1])
if kind == 't' then return {1, '', 0, moved_to(current)} end
return {1, previous(current), 1, moved}
"""

# A user's index is their fields in a hash (KEYS[1]) shared by up to
# keys.USERS_PER_BUCKET users (index.py): "<user id>|<session name>" for each
# session filed, holding when it was filed (epoch seconds by Redis's clock),
# and "<user id>|"
# holding how many are filed. A filing is plain commands
# (index.add_calls()); the scripts below remove entries and keep the count.
UNCOUNT = """
local function uncount(user, removed)
  if removed > 0 and redis.call('HINCRBY', KEYS[1], user .. '|', -removed) <= 0 then
    redis.call('HDEL', KEYS[1], user .. '|')
  end
end
"""

# KEYS[1] the user's index bucket. ARGV: the user's id, then name/filing
# time (s) pairs, as index._read() found them. Drops each entry
# still filed at that time; returns how many.
INDEX_PRUNE = "#!lua flags=allow-oom" + UNCOUNT + """
local user, removed = ARGV[1], 0
for i = 2, #ARGV - 1, 2 do
  local field = user .. '|' .. ARGV[i]
  if redis.call('HGET', KEYS[1], field) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], field)
  end
end
uncount(user, removed)
return removed
"""

# KEYS[1] the user's index bucket. ARGV: the user's id, then names. Drops those names' entries (sessions known ended); returns how many.
INDEX_REMOVE = "#!lua flags=allow-oom" + UNCOUNT + """
local user, fields = ARGV[1], {}
for i = 2, #ARGV do fields[#fields + 1] = user .. '|' .. ARGV[i] end
local removed = redis.call('HDEL', KEYS[1], unpack(fields))
uncount(user, removed)
return removed
"""

# KEYS[1] an index bucket. ARGV: two times (epoch ms): entries filed before
# the first are past the horizon and go; of those filed before the second,
# an entry whose session's key is gone goes (one whose session changed owner
# is left to that user's own readers, which check owners); "1" to list what
# went; the prefix of session keys. Sets each user's count to the entries
# left. Returns how many users the bucket held, how many of them have no
# entry left, how many entries went, 1 if the bucket has fields left (else
# Redis has deleted it), then, if asked, the user id and name of each entry
# that went. What clearsessions runs on one Redis: it reads the sessions'
# keys without declaring them, which a cluster (where they live on other
# nodes) would refuse.
INDEX_SWEEP = "#!lua flags=allow-oom,no-cluster" + """
local sub, call = string.sub, redis.call
local cut, margin, listed, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1', ARGV[4]
local reply, doomed, left, counted = {0, 0, 0, 0}, {}, {}, {}
local fields = call('HGETALL', KEYS[1])
for j = 1, #fields, 2 do
  local field, value = fields[j], fields[j + 1]
  local bar = #field - 26
  if bar > 1 and sub(field, bar, bar) == '|' then
    local user, name = sub(field, 1, bar - 1), sub(field, bar + 1)
    local filed = tonumber(value) * 1000
    local drop = filed < cut
    if not drop and filed < margin then
      drop = call('EXISTS', prefix .. '{' .. sub(name, 1, 4) .. '}' .. sub(name, 5)) == 0
    end
    if drop then
      doomed[#doomed + 1] = field
      if listed then
        reply[#reply + 1] = user
        reply[#reply + 1] = name
      end
      left[user] = left[user] or 0
    else
      left[user] = (left[user] or 0) + 1
    end
  elseif sub(field, -1) == '|' then
    local user = sub(field, 1, -2)
    counted[user] = tonumber(value)
    left[user] = left[user] or 0
  end
end
for first = 1, #doomed, 1000 do
  call('HDEL', KEYS[1], unpack(doomed, first, math.min(first + 999, #doomed)))
end
reply[3] = #doomed
for user, n in pairs(left) do
  reply[1] = reply[1] + 1
  if n == 0 then
    if counted[user] then call('HDEL', KEYS[1], user .. '|') end
    reply[2] = reply[2] + 1
  elseif counted[user] ~= n then
    call('HSET', KEYS[1], user .. '|', n)
  end
end
reply[4] = call('EXISTS', KEYS[1])
return reply
"""

SHAS = {}


def register(script):
    """Make ``script`` runnable by execute(); return it."""
    SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    return script


for _script in (SAVE, SAVE_KEEPING_TIMES, MOVE, DELETE_OWNED, INDEX_PRUNE, INDEX_REMOVE, INDEX_SWEEP):
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
    if is_cluster(client):
        results = _run_pipelined(client, calls)
    else:
        results = run_packed(client, [_command(call) for call in calls])
    return _checked(client, calls, results)


async def aexecute(client, calls):
    """Run ``calls`` as execute() does, on an asyncio client."""
    results = await _arun(client, calls)
    missing = _missing(results)
    if missing:
        replies = await _arun(client, [calls[i] for i in missing], cached=False)
        _fill(results, missing, replies)
    return _raised(results)


async def _arun(client, calls, *, cached=True):
    if is_cluster(client):
        pipe = client.pipeline()
        _queue(client, pipe, calls, cached=cached)
        return await pipe.execute(raise_on_error=False)
    return await arun_packed(client, [_command(call, cached=cached) for call in calls])


def execute_batches(client, batches):
    """
    Run each list of calls in ``batches`` as execute() does; yield each one's results.

    On one Redis, each batch is sent before the results of the one before are
    read, so that Redis works on one while the caller prepares the next.
    """
    if is_cluster(client):
        for calls in batches:
            yield execute(client, calls)
        return
    sent = []

    def commands():
        for calls in batches:
            sent.append(calls)
            yield [_command(call) for call in calls]

    for results in run_packed_batches(client, commands()):
        yield _checked(client, sent.pop(0), results)


def _checked(client, calls, results):
    """Run again with EVAL the calls that got NOSCRIPT; raise the first error; return the results."""
    missing = _missing(results)
    if missing:
        # Commands that got NOSCRIPT did not run, so running them again is safe.
        again = [calls[i] for i in missing]
        if is_cluster(client):
            replies = _run_pipelined(client, again, cached=False)
        else:
            replies = run_packed(client, [_command(call, cached=False) for call in again])
        _fill(results, missing, replies)
    return _raised(results)


def _missing(results):
    """Return the indexes of the results that are NOSCRIPT."""
    return [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]


def _fill(results, indexes, replies):
    for i, reply in zip(indexes, replies):
        results[i] = reply


def _raised(results):
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _command(call, *, cached=True):
    if isinstance(call, Command):
        return call.args
    if cached:
        return ("EVALSHA", SHAS[call.script], len(call.keys), *call.keys, *call.args)
    return ("EVAL", call.script, len(call.keys), *call.keys, *call.args)


def _run_pipelined(client, calls, *, cached=True):
    pipe = client.pipeline(transaction=False)
    _queue(client, pipe, calls, cached=cached)
    return pipe.execute(raise_on_error=False)


def _queue(client, pipe, calls, *, cached):
    """Queue ``calls`` on the cluster pipeline ``pipe``, each routed to its key's node."""
    key = None
    for call in calls:
        # The command itself: a cluster pipeline has no evalsha() and eval() methods.
        args = _command(call, cached=cached)
        if args[0] == "WAIT":
            # Keyless, and it waits for its connection's writes: to the node
            # of the write before it, which the pipeline sends on one connection.
            pipe.execute_command(*args, target_nodes=client.get_node_from_key(key))
            continue
        pipe.execute_command(*args)
        key = key or _first_key(call)


def _first_key(call):
    if isinstance(call, Eval):
        return call.keys[0] if call.keys else None
    return call.args[1] if len(call.args) > 1 else None
