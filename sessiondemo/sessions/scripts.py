"""
Lua scripts that make each session write atomic inside Redis.

Every script touches exactly one key, so each runs on one Redis Cluster slot.
They are sent with EVALSHA; a server that has lost its script cache (restart,
failover, SCRIPT FLUSH) answers NOSCRIPT and the command is sent again with
EVAL, which also caches the script.
"""

import hashlib
from typing import NamedTuple

from redis.exceptions import NoScriptError

# KEYS[1] session hash. ARGV: mode ("create" | "update" | "replace"), ttl in
# ms, the number n of fields to set, n field/value pairs, then fields to delete.
# Returns 1 on success, 0 if "create" found the key taken, -1 if "update" or
# "replace" found it gone (deleted by a logout or a revocation meanwhile).
SAVE = """
local exists = redis.call('EXISTS', KEYS[1])
local mode = ARGV[1]
if mode == 'create' then
  if exists == 1 then return 0 end
elseif exists == 0 then
  return -1
end
if mode == 'replace' then
  local stale = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 'd:' then stale[#stale + 1] = field end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
end
local nset = tonumber(ARGV[3])
if nset > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + 2 * nset))
end
local first_del = 4 + 2 * nset
if #ARGV >= first_del then
  redis.call('HDEL', KEYS[1], unpack(ARGV, first_del, #ARGV))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] session hash. Delete it and return the user id it belonged to.
DELETE = """
local uid = redis.call('HGET', KEYS[1], 'm:uid')
redis.call('DEL', KEYS[1])
return uid
"""

# KEYS[1] user index (sorted set of session digests scored by expiry in ms).
# ARGV: now in ms, then score/member pairs to add (none to only prune). Drops
# expired members, and lets the index itself expire with its last session.
INDEX_ADD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #ARGV > 1 then
  redis.call('ZADD', KEYS[1], unpack(ARGV, 2, #ARGV))
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[1], last[2])
return redis.call('ZCARD', KEYS[1])
"""

SHAS = {
    script: hashlib.sha1(script.encode()).hexdigest()
    for script in (SAVE, DELETE, INDEX_ADD)
}


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
    pipe = client.pipeline(transaction=False)
    for call in calls:
        if isinstance(call, Eval):
            pipe.evalsha(SHAS[call.script], len(call.keys), *call.keys, *call.args)
        else:
            pipe.execute_command(*call.args)
    results = pipe.execute(raise_on_error=False)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        # Commands that got NOSCRIPT did not run, so running them again is safe.
        retry = client.pipeline(transaction=False)
        for i in missing:
            call = calls[i]
            retry.eval(call.script, len(call.keys), *call.keys, *call.args)
        for i, result in zip(missing, retry.execute(raise_on_error=False)):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results
