"""
The per-user session index: fields in hashes that each hold the indexes of up
to keys.USERS_PER_BUCKET users (``<prefix>u:<bucket>``, see
keys.user_index_key()), listed in the set ``<prefix>u`` for clearsessions.

A user has a field per session filed, ``<user id>|<session name>``
(keys.session_name()), holding when it was filed, by
Redis's clock in epoch seconds, and a field ``<user id>|`` holding how many
are filed (scripts.py). A session is filed when it is created or moves to a new
id, with plain commands in its write's round trip (no script: a login runs
none); a logout leaves its entry to the next reader. Entries past the
horizon (the absolute age limit plus a margin, after which no session filed
then can be alive) and entries of sessions gone are dropped by readers and
by clearsessions, and a bucket expires that long after its newest entry.

The index is never updated atomically with a session: they live on different
Redis Cluster slots, and on a cluster the two writes of one save travel
separately, so an entry may reach its index before its session exists.
Readers therefore confirm entries against the sessions themselves, and drop
an entry whose session is gone only when it was filed more than
NEW_ENTRY_MARGIN_MS before they looked (by Redis's clock, clock.py). A session
that reaches Redis later than that after its entry was sent was created for a
request that had given up on it long before (its Redis client times out in
about a second): no browser holds its id. So a session that anyone holds is
never left without its entry, and every path that ends sessions through the
index finds it.
"""

import dataclasses
from datetime import UTC, datetime

from . import codec, conf, protocol, scripts
from .keys import (
    NAME_LENGTH,
    index_buckets_key,
    moved_record_key,
    session_handle,
    session_redis_key,
    user_index_key,
)

SCAN_BATCH = 500
# How many moves in a row an ending follows (a renewal, then a password change, ...).
MAX_HOPS = 3
# Far longer than a request waits for Redis (socket timeouts of 1 s, a few retries).
NEW_ENTRY_MARGIN_MS = 60_000
# How many index buckets (up to 64 users each) clearsessions reads at a time,
# and on one Redis how many such batches it sends at once, pipelined.
BUCKET_BATCH = 16
BATCHES_AT_ONCE = 8
# How many sessions' heads clearsessions reads in one round trip on a cluster.
OWNERS_AT_ONCE = 10_000
# Between a user's id and an entry's packed name in its field.
BAR = ord("|")


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """What the store knows about one live session, without its id."""

    name: str
    handle: str
    created_at: datetime | None
    last_active: datetime | None
    ip: str
    user_agent: str


def horizon_ms():
    """Return how long after its filing an index entry can still name a live session."""
    return conf.absolute_age_ms() + NEW_ENTRY_MARGIN_MS


def add_calls(user_id, name, filed_ms):
    """
    Return the calls that file ``name`` under ``user_id``, filed at ``filed_ms`` (Redis's clock).

    Plain commands, which a login sends with its session's write: the second
    (HINCRBY) answers how many entries the user's index holds now.
    """
    bucket, user = user_index_key(user_id), str(user_id)
    return [
        scripts.Command(("HSET", bucket, _field(user, name), filed_ms // 1000)),
        scripts.Command(("HINCRBY", bucket, f"{user}|", 1)),
        # A bucket, and the set that lists them (on a cluster, on another
        # node), expire a horizon after their newest entry.
        scripts.Command(("PEXPIRE", bucket, horizon_ms())),
        scripts.Command(("SADD", index_buckets_key(), bucket)),
        scripts.Command(("PEXPIRE", index_buckets_key(), horizon_ms())),
    ]


def entries_filed(replies):
    """Return how many entries the user's index holds, from the replies to add_calls()."""
    return int(replies[1])


def remove_call(user_id, names):
    """Return the call that drops ``names`` from ``user_id``'s index (sessions known ended)."""
    return scripts.Eval(scripts.INDEX_REMOVE, [user_index_key(user_id)], [str(user_id), *names])


def _prune_call_for(user_id, entries):
    """Return the call that drops ``entries`` [(name, filing time)] of ``user_id``'s index, if still filed then."""
    args = [value for name, filed in entries for value in (name, filed // 1000)]
    return scripts.Eval(scripts.INDEX_PRUNE, [user_index_key(user_id)], [str(user_id), *args])


def _field(user_id, name):
    """Return the field of ``user_id``'s entry for the session ``name``."""
    return f"{user_id}|{name}"


def _read(user_id):
    """
    Return Redis's time and ``user_id``'s entries [(name, filing time)], oldest first.

    Entries past the horizon name no live session: they are dropped, not returned.
    (An operation of the session protocol, as are the functions that call it.)
    """
    now = yield protocol.NOW
    [fields] = yield [scripts.Command(("HGETALL", user_index_key(user_id)))]
    user_id = str(user_id)
    # By filing time; within a millisecond, in the order filed (a compact
    # hash keeps its fields in the order they were added).
    entries = sorted(
        ((name, filed) for user, name, filed in _entries_in(_pairs(fields)) if user == user_id),
        key=lambda entry: entry[1],
    )
    cut = now - horizon_ms()
    stale = [(name, filed) for name, filed in entries if filed < cut]
    if stale:
        yield [_prune_call_for(user_id, stale)]
    return now, [(name, filed) for name, filed in entries if filed >= cut]


def _pairs(fields):
    """Return the (field, value) pairs of an HGETALL reply (a dict through redis-py, else a flat list)."""
    return list(fields.items() if isinstance(fields, dict) else zip(fields[::2], fields[1::2]))


@dataclasses.dataclass(frozen=True)
class _Found:
    """What a session's key holds, as an index reader needs it."""

    kind: bytes | None  # codec.SESSION, codec.STUB, or None: gone (or not ours to read)
    owner: str
    raw: bytes | None
    ttl_ms: int


def _infos(names):
    """Return what each of ``names``' keys holds (_Found), in one round trip."""
    calls = []
    for name in names:
        calls += [scripts.Command(("GET", session_redis_key(name))), scripts.Command(("PTTL", session_redis_key(name)))]
    replies = (yield calls) if calls else []
    found = []
    for raw, ttl in zip(replies[::2], replies[1::2]):
        kind, owner, _ = codec.header(raw) if raw else (None, "", 0)
        found.append(_Found(kind, owner, raw, ttl))
    return found


def _belongs(info, user_id):
    return info.kind == codec.SESSION and info.owner == str(user_id)


def _prunable(info, user_id):
    """Return True if an entry whose key holds ``info`` can go: gone, or someone else's."""
    # An id the session moved away from goes when it has expired.
    return info.kind is None or (info.kind == codec.SESSION and info.owner != str(user_id))


def _prune_call(user_id, now, entries, infos):
    """Return the call that drops entries of ended sessions old enough to be sure, or None."""
    doomed = [
        (name, filed)
        for (name, filed), info in zip(entries, infos)
        if _prunable(info, user_id) and filed < now - NEW_ENTRY_MARGIN_MS
    ]
    return _prune_call_for(user_id, doomed) if doomed else None


def sessions_of(user_id):
    """Return ``user_id``'s live sessions in two round trips, and a third to prune ended ones."""
    now, entries = yield from _read(user_id)
    if not entries:
        return []
    infos = yield from _infos([name for name, _ in entries])
    sessions = []
    for (name, _), info in zip(entries, infos):
        if not _belongs(info, user_id):
            continue
        try:
            value = codec.decode(name, info.raw)
        except (ValueError, IndexError, LookupError):
            continue  # refused when it is next read
        sessions.append(
            SessionInfo(
                name=name,
                handle=session_handle(name),
                created_at=_timestamp(value.created_ms),
                last_active=_timestamp(_last_active_ms(value, info.ttl_ms, now)),
                ip=value.ip,
                user_agent=value.user_agent,
            )
        )
    prune = _prune_call(user_id, now, entries, infos)
    if prune is not None:
        yield [prune]
    return sessions


def _last_active_ms(value, ttl_ms, now):
    """
    Return when the session was last used: a read or write slides its TTL back to its idle time.

    For a session with a fixed expiry, when its id was issued.
    """
    if value.idle_ms and ttl_ms > 0:
        return min(now, now - (value.idle_ms - ttl_ms))
    return value.issued_ms


def _timestamp(ms):
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def find_name(user_id, handle):
    """Return the name of ``user_id``'s session whose handle is ``handle``, or None."""
    for name in (yield from user_names(user_id)):
        if session_handle(name) == handle:
            return name
    return None


def user_names(user_id):
    """Return every name in ``user_id``'s index: live sessions and entries not yet pruned."""
    _, entries = yield from _read(user_id)
    return [name for name, _ in entries]


def end_sessions(user_id, names, *, kept=frozenset()):
    """
    Delete those of ``names`` that are ``user_id``'s, and every id that leads to them; return the sessions ended.

    Never the sessions named ``kept``, even where an id being ended leads to
    one (the id a password change left, to the session that changes it again).
    Their entries leave the index only once the sessions are known deleted.
    """
    if not names:
        return []
    ended = yield from _delete_owned(str(user_id), names, kept)
    yield [remove_call(user_id, names)]
    return ended


def end_moved(user_id, names):
    """End the sessions ``names`` that ids just deleted had moved to (``user_id`` "": anyone's)."""
    return (yield from _delete_owned(str(user_id), names, frozenset()))


def _delete_owned(owner, names, kept):
    """
    Delete ``names`` if ``owner``'s (DELETE_OWNED), then the ids they replaced and the sessions they moved to.

    A request that read an index, or loaded a session, before another moved
    the session to a new id finds the old key recording the move, and follows
    it: so ending a session ends it whatever id it has reached meanwhile.
    """
    ended = []
    for _ in range(MAX_HOPS + 1):
        if not names:
            break
        calls = [
            scripts.Eval(
                scripts.DELETE_OWNED, [session_redis_key(name), moved_record_key(name)], [owner]
            )
            for name in names
        ]
        results = yield calls
        ended += [name for name, result in zip(names, results) if result[0] == 1 and result[2] == 1]
        # Then the ids those replaced, and the sessions they moved to.
        names = [
            found.decode()
            for deleted, previous, _, moved in results
            for found in ((previous if deleted else b""), moved)
            if found and found.decode() not in kept
        ]
    return ended


def evict_oldest(user_id, *, limit, keep):
    """End ``user_id``'s oldest live sessions beyond ``limit``, never ``keep``; return them."""
    now, entries = yield from _read(user_id)  # oldest first
    infos = yield from _infos([name for name, _ in entries])
    live = [name for (name, _), info in zip(entries, infos) if _belongs(info, user_id)]
    excess = len(live) - limit
    victims = [name for name in live if name != keep][: max(excess, 0)]
    prune = _prune_call(user_id, now, entries, infos)
    if prune is not None:
        yield [prune]
    return (yield from end_sessions(user_id, victims))


def end_everything(client, batch_size=SCAN_BATCH, on_ended=None):
    """
    Delete every session and index under the prefix; return how many sessions there were.

    Call ``on_ended(user_id, name)`` for each session deleted.
    """
    ended = 0
    prefix = f"{conf.key_prefix()}s:"
    for batch in _scan_batches(client, f"{prefix}*", batch_size):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.get(key)
        values = pipe.execute()
        client.unlink(*batch)
        for key, raw in zip(batch, values):
            kind, owner, _ = codec.header(raw) if raw else (None, "", 0)
            if kind != codec.SESSION:
                continue  # an id in its grace period, not a session of its own
            ended += 1
            if on_ended is not None:
                on_ended(owner or None, _name_of_key(key.decode()))
    for batch in _scan_batches(client, f"{conf.key_prefix()}u:*", batch_size):
        client.unlink(*batch)
    client.unlink(index_buckets_key())
    return ended


def _name_of_key(key):
    tag_and_digest = key.removeprefix(f"{conf.key_prefix()}s:")
    return tag_and_digest[1:5] + tag_and_digest[6:]


def _scan_batches(client, pattern, batch_size, **kwargs):
    batch = []
    for key in client.scan_iter(match=pattern, count=batch_size, **kwargs):
        batch.append(key)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclasses.dataclass
class PruneReport:
    """What clear_expired() found and did."""

    indexes_scanned: int = 0
    entries_pruned: int = 0
    indexes_removed: int = 0

    def __str__(self):
        return (
            f"scanned {self.indexes_scanned} user index(es), pruned "
            f"{self.entries_pruned} entr(y/ies) of ended sessions, removed "
            f"{self.indexes_removed} empty index(es)"
        )


def prune_all(*, cluster, batch_size=BUCKET_BATCH, on_pruned=None):
    """
    Prune every user index of entries whose session has ended (an operation of the session protocol).

    Walks the set of buckets (not the keyspace: unrelated keys cost nothing)
    ``batch_size`` buckets at a time, so memory stays bounded however
    many users there are. Safe to run while the site serves traffic and
    alongside another run: each step is idempotent and drops only entries of
    sessions known gone (see the module docstring). Call ``on_pruned(user_id,
    name)`` for each entry pruned. ``cluster``: whether the store is a Redis
    Cluster, where the sessions' keys live on other nodes than the buckets.
    """
    report = PruneReport()
    yield from _adopt_previous_layout()
    at_once = batch_size if cluster else batch_size * BATCHES_AT_ONCE
    buckets, cursor = [], None
    while cursor != 0:
        cursor, found = yield from _scan_members(index_buckets_key(), cursor or 0, batch_size)
        buckets += found
        while buckets and (len(buckets) >= at_once or cursor == 0):
            chunk, buckets = buckets[:at_once], buckets[at_once:]
            batches = [chunk[first : first + batch_size] for first in range(0, len(chunk), batch_size)]
            if cluster:
                for batch in batches:
                    yield from _prune_buckets(batch, report, on_pruned)
            else:
                yield from _sweep_buckets(batches, report, on_pruned)
    return report


def _scan_members(key, cursor, count):
    """Return the next cursor of an SSCAN of the set ``key``, and the members it found."""
    [(cursor, members)] = yield [scripts.Command(("SSCAN", key, cursor, "COUNT", count))]
    return int(cursor), [member.decode() if isinstance(member, bytes) else member for member in members]


# The layout before this one: a field per user in ``<prefix>i:<bucket>`` (up
# to 128 users a bucket) holding 32-byte entries, a name and when it was
# filed (6 bytes, epoch ms), the buckets listed in ``<prefix>i``.
PREVIOUS_ENTRY_BYTES = 32


def _adopt_previous_layout():
    """File the entries of an index in the previous layout in this one, and drop it: once, after an upgrade."""
    registry = f"{conf.key_prefix()}i"
    cursor = None
    while cursor != 0:
        cursor, buckets = yield from _scan_members(registry, cursor or 0, BUCKET_BATCH)
        for bucket in buckets:
            [fields] = yield [scripts.Command(("HGETALL", bucket))]
            calls = []
            for user_id, packed in _pairs(fields):
                for at in range(0, len(packed) - PREVIOUS_ENTRY_BYTES + 1, PREVIOUS_ENTRY_BYTES):
                    name = packed[at : at + NAME_LENGTH].decode()
                    filed = int.from_bytes(packed[at + NAME_LENGTH : at + PREVIOUS_ENTRY_BYTES], "big")
                    calls += add_calls(user_id.decode(), name, filed)
            yield [*calls, scripts.Command(("UNLINK", bucket))]
    yield [scripts.Command(("UNLINK", registry))]


def _sweep_buckets(batches, report, on_pruned):
    """
    Prune each bucket in ``batches`` with one INDEX_SWEEP, which reads and checks it inside Redis.

    On one Redis. The batches go out pipelined (protocol.Batches): Redis
    works on one while the replies to the one before are read.
    """
    listed = "1" if on_pruned is not None else ""
    # Entries past the horizon go; those filed long enough ago go if their session has.
    now = yield protocol.NOW
    args = [now - horizon_ms(), now - NEW_ENTRY_MARGIN_MS, listed, f"{conf.key_prefix()}s:"]
    sweeps = [[scripts.Eval(scripts.INDEX_SWEEP, [bucket], args) for bucket in buckets] for buckets in batches]
    gone = []
    for buckets, results in zip(batches, (yield protocol.Batches(sweeps))):
        for bucket, (users, emptied, dropped, fields_left, *pairs) in zip(buckets, results):
            report.indexes_scanned += users
            report.indexes_removed += emptied
            report.entries_pruned += dropped
            if not fields_left:  # Redis deleted the emptied bucket
                gone.append(bucket)
            if on_pruned is not None:
                for user_id, name in zip(pairs[::2], pairs[1::2]):
                    on_pruned(user_id.decode(), name.decode())
    if gone:
        yield [scripts.Command(("SREM", index_buckets_key(), *gone))]


def _prune_buckets(buckets, report, on_pruned):
    """Prune ``buckets`` reading each session's head from wherever it lives (Redis Cluster)."""
    replies = yield [scripts.Command(("TIME",)), *(scripts.Command(("HGETALL", bucket)) for bucket in buckets)]
    seconds, micros = replies[0]
    now = int(seconds) * 1000 + int(micros) // 1000
    # Entries past the horizon go unread; those filed long enough ago go if their session has.
    cut, margin = now - horizon_ms(), now - NEW_ENTRY_MARGIN_MS
    indexes, gone = {}, []
    for bucket, fields in zip(buckets, replies[1:]):
        pairs = _pairs(fields)
        if not pairs:
            gone.append(bucket)
        indexes[bucket] = _entries_in(pairs)
        report.indexes_scanned += sum(1 for field, _ in pairs if not _is_entry(field))
    yield from _sweep_each_entry(indexes, cut, margin, report, on_pruned)
    if gone:
        yield [scripts.Command(("SREM", index_buckets_key(), *gone))]


def _sweep_each_entry(indexes, cut, margin, report, on_pruned):
    """Prune the entries in ``indexes`` ({bucket: [(user id, name, filed)]}) that name sessions gone or not theirs."""
    users = {}
    for entries in indexes.values():
        for user_id, name, filed in entries:
            users.setdefault(user_id, []).append((name, filed))
    checked = [(user_id, name) for user_id, entries in users.items() for name, filed in entries if cut <= filed < margin]
    owners = yield from _owners(checked)
    prunes, pruned = [], []
    for user_id, entries in users.items():
        doomed = [
            (name, filed)
            for name, filed in entries
            if filed < cut or (filed < margin and _prunable(owners[user_id, name], user_id))
        ]
        if doomed:
            prunes.append(_prune_call_for(user_id, doomed))
            pruned += [(user_id, name) for name, _ in doomed]
            report.indexes_removed += len(doomed) == len(entries)
    if prunes:
        yield prunes
    report.entries_pruned += len(pruned)
    if on_pruned is not None:
        for user_id, name in pruned:
            on_pruned(user_id, name)


def _is_entry(field):
    """Return True for a bucket's field "<user id>|<packed name>", False for a count, "<user id>|"."""
    return len(field) > NAME_LENGTH + 1 and field[-NAME_LENGTH - 1] == BAR


def _entries_in(pairs):
    """Return the (user id, name, filing time in ms) of each entry among a bucket's (field, value) ``pairs``, in order."""
    entries = []
    for field, filed in pairs:
        # "<user id>|" and a packed name; "<user id>|" alone is the user's count.
        if _is_entry(field):
            user_id = field[: -NAME_LENGTH - 1].decode()
            entries.append((user_id, field[-NAME_LENGTH:].decode(), int(filed) * 1000))
    return entries


def _owners(checked):
    """Return, for each (user id, name), what its key holds (_Found without value), reading its head only."""
    calls = [
        # Enough of the value for its kind and an owner as long as the user's id (codec.header()).
        scripts.Command(("GETRANGE", session_redis_key(name), 0, codec.OWNER_AT + len(user_id)))
        for user_id, name in checked
    ]
    heads = []
    for first in range(0, len(calls), OWNERS_AT_ONCE):
        heads += yield calls[first : first + OWNERS_AT_ONCE]
    found = {}
    for (user_id, name), head in zip(checked, heads):
        kind, owner, _ = codec.header(head) if head else (None, "", 0)
        found[user_id, name] = _Found(kind, owner, None, 0)
    return found
