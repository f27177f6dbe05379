"""
Moving a session to a new id: cycle_key() and renewal, the part of SessionStore that does them.

The next save moves the session with one MOVE script on the old key and the
new one, which share a Redis Cluster slot (keys.successor_id()). A session
that a user logged in to continues (re-authentication, a password change, a
renewal): it moves only if the old id is still live, keeping the login time
and the absolute deadline of its first login, so a session ended meanwhile
stays ended. An anonymous one starts anew (a login). Either way the move
happens only if nothing was written since the request loaded the session;
otherwise the request loads it again, puts its own changes on top and tries
again, so no write is lost. A renewed id lives out a grace period as a stub
that leads to the new one (keys.seal_successor()).
"""

from django.contrib.sessions.backends.base import UpdateError

from . import codec, conf, events, scripts
from .keys import (
    is_valid_session_id,
    moved_record_key,
    open_successor,
    seal_successor,
    session_handle,
    session_name,
    session_redis_key,
    successor_id,
)

# How often a move is tried again when a concurrent write or move got there first.
MAX_ATTEMPTS = 10
# How long an id left without a grace period records where the session went:
# far longer than a request that read the index, or loaded the session, before
# the move takes to end it.
MOVED_RECORD_MS = 60_000


class Move:
    """A move of the session from ``old_key`` to a new id, done by the next save."""

    def __init__(self, old_key, *, continued, grace):
        self.old_key = old_key
        self.continued = continued
        self.grace = grace


class SessionMovesMixin:
    """The moves of SessionStore (backend.py): cycle_key(), renew() and the save that does them."""

    def cycle_key(self):
        """
        Move the session to a new id, keeping its data.

        The next save moves it, in one round trip and atomically: a logged-in
        session moves only if it is still live (so a session ended meanwhile
        stays ended) and keeps its login time and absolute timeout; meanwhile
        exists() already denies the old id.
        """
        self._move_to_new_key(grace=0, continued=None)

    async def acycle_key(self):
        # Loaded first, on the asyncio client: the move itself is the next save's.
        await self._aget_session()
        self.cycle_key()

    def cycle_key_unless_new(self):
        """Give the session a new id unless it already got one in this request."""
        if self.session_key is not None and not self._key_changed:
            self.cycle_key()

    def renewal_due(self):
        """Return True if this loaded session's id is older than SESSION_REDIS_RENEW_AFTER."""
        after = conf.renew_after()
        loaded = self._loaded
        if not after or self._key_changed or loaded is None or not loaded.issued_ms:
            return False
        return self._now_ms - loaded.issued_ms >= after * 1000

    def renew(self):
        """Move the session to a new id; the old one keeps working for a short grace period."""
        self._move_to_new_key(grace=conf.renewal_grace(), continued=True)

    async def arenew(self):
        """Move the session to a new id as renew() does, loading it on the asyncio client."""
        await self._aget_session()
        self.renew()

    def _move_to_new_key(self, *, grace, continued):
        data = self._session
        if not is_valid_session_id(self.session_key):
            # Never stored (or no longer): the next save creates it under a new id.
            self._session_key = None
            self._session_cache = data
            self.modified = True
            return
        if self._move is not None:
            # Moved twice before a save: one move, from the id Redis holds.
            grace = min(grace, self._move.grace)
            self._move.grace = grace
        else:
            if continued is None:
                # A logged-in session continues; an anonymous one starts anew (a login).
                continued = self._stored_user_id is not None
            self._move = Move(self.session_key, continued=continued, grace=grace)
        self._session_key = successor_id(self._move.old_key)
        self._session_cache = data
        self._key_changed = True
        self.modified = True

    def _save_move(self):
        """Move the session to its new id, carrying every write made meanwhile."""
        move = self._move
        changes = self._changes(self._session)
        for _ in range(MAX_ATTEMPTS):
            outcome, reply = yield from self._try_move(move)
            if outcome == 1:
                self._move = None
                return
            if outcome == 0:
                # The new id is taken (a 1 in 2^129 event): draw another.
                self._session_key = successor_id(move.old_key)
                continue
            if outcome == -2:
                stub = codec.decode_stub(reply)
                successor = open_successor(move.old_key, stub.sealed) if stub else None
                if successor is None:
                    break
                if move.grace:
                    # Another request renewed it first: take its new id, and save there.
                    self._move = None
                    self._session_key = successor
                    current = yield from self._fetch(successor)
                    if not isinstance(current, codec.Value):
                        break
                    self._merged(current, changes)
                    return (yield from self._save_update())
                # A move that must leave every earlier id behind starts from the newest.
                move.old_key = successor
                self._session_key = successor_id(successor)
                reply = yield from self._fetch(successor)
                if not isinstance(reply, codec.Value):
                    break
            elif outcome == -3:
                try:
                    reply = codec.decode(session_name(move.old_key), reply)
                except (ValueError, IndexError, LookupError):
                    break
            else:
                break
            # Written meanwhile: this request's changes go on top of what is there.
            self._merged(reply, changes)
        self._move = None
        self._forget_key()
        raise UpdateError

    def _try_move(self, move):
        """Run MOVE once; return its outcome and, for -2 and -3, what the old key holds."""
        session = self._session
        new_name, old_name = session_name(self.session_key), session_name(move.old_key)
        value = self._value(session, previous=old_name if move.grace else "")
        head, tail = codec.encode(new_name, value)
        loaded = self._loaded
        args = [
            loaded.version.to_bytes(4, "big") if loaded is not None else "",
            "1" if move.continued else "0",
            move.grace * 1000,
            seal_successor(move.old_key, self.session_key) if move.grace else b"",
            new_name,
            MOVED_RECORD_MS,
            head,
            tail,
            self._ttl_ms(),
            conf.absolute_age_ms(),
        ]
        write = scripts.Eval(
            scripts.MOVE,
            [session_redis_key(old_name), session_redis_key(new_name), moved_record_key(old_name)],
            args,
        )
        user_id = value.user_id or None
        reply = yield from self._run_write(write, filed_under=user_id, name=new_name)
        outcome = reply[0]
        if outcome == 1:
            # The old id keeps its index entry until a reader finds it gone:
            # in its grace period, whatever ends the user's sessions ends it too.
            old_owner = reply[1].decode() or None
            if old_owner is not None:
                events.log_event(
                    events.ROTATED,
                    reason="renewal" if move.grace else None,
                    user_id=old_owner,
                    session=session_handle(old_name),
                    new_session=session_handle(new_name),
                )
            elif user_id is not None:
                events.log_event(events.CREATED, user_id=user_id, session=session_handle(new_name))
            self._written(value)
            self._previous_name = old_name if move.grace else None
        return outcome, reply[1] if outcome in (-2, -3) else None
