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

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import UpdateError

from . import conf, events, scripts
from .keys import (
    MOVED_FIELD,
    PREVIOUS_FIELD,
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
        return await sync_to_async(self.cycle_key)()

    def cycle_key_unless_new(self):
        """Give the session a new id unless it already got one in this request."""
        if self.session_key is not None and not self._key_changed:
            self.cycle_key()

    def renewal_due(self):
        """Return True if this loaded session's id is older than SESSION_REDIS_RENEW_AFTER."""
        after = conf.renew_after()
        if not after or self._key_changed or self._issued_ms is None or self._now_ms is None:
            return False
        return self._now_ms - self._issued_ms >= after * 1000

    def renew(self):
        """Move the session to a new id; the old one keeps working for a short grace period."""
        self._move_to_new_key(grace=conf.renewal_grace(), continued=True)

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
        for _ in range(MAX_ATTEMPTS):
            outcome, reply = self._try_move(move)
            if outcome == 1:
                self._move = None
                return
            if outcome == 0:
                # The new id is taken (a 1 in 2^129 event): draw another.
                self._session_key = successor_id(move.old_key)
                continue
            if outcome == -1:
                self._move = None
                self._forget_key()
                raise UpdateError
            if outcome == -2:
                successor = open_successor(move.old_key, reply)
                if successor is None:
                    self._move = None
                    self._forget_key()
                    raise UpdateError
                if move.grace:
                    # Another request renewed it first: take its new id, and save there.
                    self._move = None
                    self._session_key = successor
                    return self._save_update("update" if self._stored is not None else "replace")
                # A move that must leave every earlier id behind starts from the newest.
                move.old_key = successor
                self._session_key = successor_id(successor)
            self._rebase(move)
        raise UpdateError

    def _try_move(self, move):
        """Run MOVE once; return its outcome and, for -2, the sealed id of the replacement."""
        session = self._session
        encoded = self._encoded(session)
        new_name, old_name = session_name(self.session_key), session_name(move.old_key)
        fields, user_id, ttl_ms = self._hash_fields(new_name, encoded, session, self._client)
        if move.grace:
            fields[PREVIOUS_FIELD] = old_name
        pairs = [item for pair in fields.items() for item in pair]
        sealed = seal_successor(move.old_key, self.session_key) if move.grace else b""
        args = [
            self._version or "",
            "1" if move.continued else "0",
            move.grace * 1000,
            sealed,
            new_name,
            MOVED_RECORD_MS,
            ttl_ms,
            conf.absolute_age_ms(),
            len(fields),
            *pairs,
        ]
        write = scripts.Eval(
            scripts.MOVE,
            [session_redis_key(old_name), session_redis_key(new_name), moved_record_key(old_name)],
            args,
        )
        reply = self._run_write(write, filed_under=user_id, name=new_name)
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
            self._written(encoded, user_id, version="1")
            self._previous_name = old_name if move.grace else None
        return outcome, reply[1] if outcome == -2 else None

    def _rebase(self, move):
        """Load ``move.old_key`` again and put this request's changes on top of what it holds."""
        session = self._session
        if self._stored is not None:
            changed = {
                key: value
                for key, value in session.items()
                if self._stored.get(key) != self.serializer().dumps(value)
            }
            removed = [key for key in self._stored if key not in session]
        else:
            # Cleared in this request: the session is what this request made it.
            changed, removed = dict(session), None
        client_fields, client = self._client_fields, self._client
        fields = self._fetch(move.old_key)
        if MOVED_FIELD.encode() in fields:
            return  # moved meanwhile: the next MOVE says how
        current = self._decode(move.old_key, fields) if fields else None
        self._client_fields = client_fields
        self._client = client or self._client
        if current is None:
            # Gone: a continued session fails in MOVE; a new one starts from this request's data.
            self._version = None
            return
        if removed is None:
            self._stored = None
            current = {}
        for key in removed or ():
            current.pop(key, None)
        current.update(changed)
        self._session_cache = current
