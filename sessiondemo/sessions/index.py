"""
The per-user session index: one sorted set per user, ``<prefix>u:<user id>``.

Members are session digests, scored by the session's expiry time in epoch
milliseconds. The engine keeps it in step with every save and delete, in the
same round trip; expired members are pruned whenever an index is written and
by clear_expired(), and the index key expires with its last session. The
index is never updated atomically with a session (they may live on different
Redis Cluster slots), so readers confirm membership against the sessions
themselves.
"""

import dataclasses
import time

from . import scripts
from .keys import key_prefix, session_redis_key, user_index_key

SCAN_BATCH = 500


def add_call(user_id, digest, *, expires_ms, now_ms):
    """Return the call that files ``digest`` under ``user_id`` until ``expires_ms``."""
    return scripts.Eval(scripts.INDEX_ADD, [user_index_key(user_id)], [now_ms, expires_ms, digest])


def remove_call(user_id, digests):
    """Return the call that drops ``digests`` from ``user_id``'s index."""
    return _remove(user_index_key(user_id), digests)


def _remove(key, digests):
    # Redis deletes a sorted set with its last member, so no index stays empty.
    return scripts.Command(("ZREM", key, *digests))


def live_digests(client, user_id):
    """Return the digests of ``user_id``'s live sessions, pruning dead entries."""
    now_ms = int(time.time() * 1000)
    key = user_index_key(user_id)
    pipe = client.pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", now_ms)
    pipe.zrange(key, 0, -1)
    digests = [d.decode() for d in pipe.execute()[1]]
    return _confirm(client, {key: digests}).get(key, [])


def end_sessions(client, user_id, *, keep_digest=None):
    """Delete every session in ``user_id``'s index but ``keep_digest``; return how many."""
    key = user_index_key(user_id)
    targets = [d.decode() for d in client.zrange(key, 0, -1)]
    targets = [d for d in targets if d != keep_digest]
    if not targets:
        return 0
    pipe = client.pipeline(transaction=False)
    for digest in targets:
        pipe.delete(session_redis_key(digest))
    pipe.zrem(key, *targets)
    return sum(pipe.execute()[:-1])


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


def prune_all(client, batch_size=SCAN_BATCH):
    """
    Prune every user index of entries whose session has expired or is gone.

    Walks the index keys with SCAN in batches of about ``batch_size``, so
    memory stays bounded however many users there are. Safe to run while the
    site serves traffic and alongside another run: each step is idempotent.
    """
    report = PruneReport()
    batch = []
    for key in client.scan_iter(match=f"{key_prefix()}u:*", count=batch_size, _type="zset"):
        batch.append(key.decode())
        if len(batch) >= batch_size:
            _prune_batch(client, batch, report)
            batch = []
    if batch:
        _prune_batch(client, batch, report)
    return report


def _prune_batch(client, keys, report):
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.zremrangebyscore(key, "-inf", now_ms)
        pipe.zrange(key, 0, -1)
    results = pipe.execute()
    members = {}
    for i, key in enumerate(keys):
        expired, digests = results[2 * i : 2 * i + 2]
        report.entries_pruned += expired
        members[key] = [d.decode() for d in digests]
    live = _confirm(client, members)
    for key, digests in members.items():
        report.entries_pruned += len(digests) - len(live.get(key, []))
        if not live.get(key):
            report.indexes_removed += 1
    report.indexes_scanned += len(keys)
