"""
The per-user session index: one sorted set per user, ``<prefix>u:<user id>``.

Members are session digests, scored by the latest time the session can live
to (its login time plus the absolute age, or its fixed expiry), in epoch
milliseconds. The engine keeps it in step with every save and delete, in the
same round trip; members past their score are pruned whenever an index is
written and by clear_expired(), and the index key expires with its last
session. A session may end before its score (idle timeout) and the index is
never updated atomically with a session (they may live on different Redis
Cluster slots), so readers confirm members against the sessions themselves
and drop those that are gone.
"""

import dataclasses
import time
from datetime import UTC, datetime

from . import scripts
from .conf import key_prefix
from .keys import (
    AGENT_FIELD,
    CREATED_FIELD,
    IP_FIELD,
    SEEN_FIELD,
    USER_FIELD,
    session_handle,
    session_redis_key,
    user_index_key,
)

SCAN_BATCH = 500
INFO_FIELDS = (USER_FIELD, CREATED_FIELD, SEEN_FIELD, IP_FIELD, AGENT_FIELD)


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """What the store knows about one live session, without its id."""

    digest: str
    handle: str
    created_at: datetime | None
    last_active: datetime | None
    ip: str
    user_agent: str


def add_call(user_id, digest, *, score_ms, now_ms, limit):
    """Return the call that files ``digest`` under ``user_id``; it answers 1 past ``limit``."""
    return scripts.Eval(
        scripts.INDEX_ADD, [user_index_key(user_id)], [now_ms, limit, score_ms, digest]
    )


def remove_call(user_id, digests):
    """Return the call that drops ``digests`` from ``user_id``'s index."""
    return _remove(user_index_key(user_id), digests)


def _remove(key, digests):
    # Redis deletes a sorted set with its last member, so no index stays empty.
    return scripts.Command(("ZREM", key, *digests))


def _indexed_digests(client, key):
    pipe = client.pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", int(time.time() * 1000))
    pipe.zrange(key, 0, -1)
    return [digest.decode() for digest in pipe.execute()[1]]


def sessions_of(client, user_id):
    """Return ``user_id``'s live sessions in two round trips, dropping entries of ended ones."""
    key = user_index_key(user_id)
    digests = _indexed_digests(client, key)
    if not digests:
        return []
    pipe = client.pipeline(transaction=False)
    for digest in digests:
        pipe.hmget(session_redis_key(digest), INFO_FIELDS)
    sessions, gone = [], []
    for digest, (owner, created, seen, ip, agent) in zip(digests, pipe.execute()):
        if owner is None or owner.decode() != str(user_id):
            gone.append(digest)
            continue
        sessions.append(
            SessionInfo(
                digest=digest,
                handle=session_handle(digest),
                created_at=_timestamp(created),
                last_active=_timestamp(seen),
                ip=ip.decode() if ip else "",
                user_agent=agent.decode(errors="replace") if agent else "",
            )
        )
    if gone:
        scripts.execute(client, [_remove(key, gone)])
    return sessions


def _timestamp(raw):
    return datetime.fromtimestamp(float(raw), UTC) if raw else None


def find_digest(client, user_id, handle):
    """Return the digest of ``user_id``'s session whose handle is ``handle``, or None."""
    for digest in _indexed_digests(client, user_index_key(user_id)):
        if session_handle(digest) == handle:
            return digest
    return None


def end_sessions(client, user_id, digests):
    """Delete ``user_id``'s sessions ``digests``; return the digests that were live."""
    if not digests:
        return []
    pipe = client.pipeline(transaction=False)
    for digest in digests:
        pipe.delete(session_redis_key(digest))
    pipe.zrem(user_index_key(user_id), *digests)
    deleted = pipe.execute()[:-1]
    return [digest for digest, was_live in zip(digests, deleted) if was_live]


def evict_oldest(client, user_id, *, limit, keep):
    """End ``user_id``'s oldest live sessions beyond ``limit``, never ``keep``; return them."""
    key = user_index_key(user_id)
    digests = [d.decode() for d in client.zrange(key, 0, -1)]  # oldest first
    live = _confirm(client, {key: digests}).get(key, [])
    excess = len(live) - limit
    victims = [d for d in live if d != keep][: max(excess, 0)]
    return end_sessions(client, user_id, victims)


def user_digests(client, user_id):
    """Return every digest in ``user_id``'s index, pruned by score only."""
    return _indexed_digests(client, user_index_key(user_id))


def end_everything(client, batch_size=SCAN_BATCH, on_ended=None):
    """
    Delete every session and index under the prefix; return how many sessions there were.

    Call ``on_ended(user_id, digest)`` for each session deleted.
    """
    ended = 0
    prefix = f"{key_prefix()}s:"
    for batch in _scan_batches(client, f"{prefix}*", batch_size):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.hget(key, USER_FIELD)
        owners = pipe.execute()
        client.unlink(*batch)
        ended += len(batch)
        if on_ended is not None:
            for key, owner in zip(batch, owners):
                on_ended(owner.decode() if owner else None, key.decode().removeprefix(prefix))
    for batch in _scan_batches(client, f"{key_prefix()}u:*", batch_size):
        client.unlink(*batch)
    return ended


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


def prune_all(client, batch_size=SCAN_BATCH, on_pruned=None):
    """
    Prune every user index of entries whose session has expired or is gone.

    Walks the index keys with SCAN in batches of about ``batch_size``, so
    memory stays bounded however many users there are. Safe to run while the
    site serves traffic and alongside another run: each step is idempotent.
    Call ``on_pruned(user_id, digest)`` for each entry pruned.
    """
    report = PruneReport()
    pattern = f"{key_prefix()}u:*"
    for batch in _scan_batches(client, pattern, batch_size, _type="zset"):
        _prune_batch(client, [key.decode() for key in batch], report, on_pruned)
    return report


def _prune_batch(client, keys, report, on_pruned):
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.zrange(key, 0, -1, withscores=True)
    expired, unexpired = {}, {}
    for key, members in zip(keys, pipe.execute()):
        for digest, score in members:
            (expired if score <= now_ms else unexpired).setdefault(key, []).append(digest.decode())
    if expired:
        scripts.execute(client, [_remove(key, digests) for key, digests in expired.items()])
    live = _confirm(client, unexpired)
    for key in keys:
        still_live = set(live.get(key, []))
        pruned = expired.get(key, []) + [d for d in unexpired.get(key, []) if d not in still_live]
        report.entries_pruned += len(pruned)
        if not live.get(key):
            report.indexes_removed += 1
        if on_pruned is not None:
            user_id = key.removeprefix(f"{key_prefix()}u:")
            for digest in pruned:
                on_pruned(user_id, digest)
    report.indexes_scanned += len(keys)


def _confirm(client, members_by_index):
    """Return ``members_by_index`` less the members whose session is gone, and drop those."""
    pairs = [(key, d) for key, digests in members_by_index.items() for d in digests]
    if not pairs:
        return {}
    pipe = client.pipeline(transaction=False)
    for _, digest in pairs:
        pipe.exists(session_redis_key(digest))
    live, gone = {}, {}
    for (key, digest), exists in zip(pairs, pipe.execute()):
        (live if exists else gone).setdefault(key, []).append(digest)
    if gone:
        scripts.execute(client, [_remove(key, digests) for key, digests in gone.items()])
    return live
