"""Operations on all the sessions of a user, or of everyone, through the per-user index."""

import logging

from . import events, index, protocol
from .connection import get_client, is_cluster, store_errors
from .keys import is_valid_session_id, session_handle, session_name


class UserSessionsMixin:
    """The per-user side of SessionStore: list, end, and prune a user's sessions."""

    @classmethod
    def user_sessions(cls, user_id):
        """Return the live sessions of ``user_id`` (index.SessionInfo, no ids) in two round trips."""
        return protocol.run(index.sessions_of(user_id))

    @classmethod
    async def auser_sessions(cls, user_id):
        """Return what user_sessions() returns, on the asyncio client."""
        return await protocol.arun(index.sessions_of(user_id))

    @classmethod
    def end_user_session(cls, user_id, handle, *, reason=events.ENDED_BY_USER):
        """End the session of ``user_id`` whose handle is ``handle``; return whether one ended."""
        return protocol.run(cls._end_user_session(user_id, handle, reason))

    @classmethod
    async def aend_user_session(cls, user_id, handle, *, reason=events.ENDED_BY_USER):
        """End the session of ``user_id`` whose handle is ``handle``, on the asyncio client."""
        return await protocol.arun(cls._end_user_session(user_id, handle, reason))

    @classmethod
    def _end_user_session(cls, user_id, handle, reason):
        name = yield from index.find_name(user_id, handle)
        ended = (yield from index.end_sessions(user_id, [name])) if name else []
        cls._log_ended(user_id, ended, reason)
        return bool(ended)

    @classmethod
    def end_user_sessions(cls, user_id, *, keep=(), reason=events.ENDED_BY_USER):
        """End every session of ``user_id`` but those keyed ``keep`` (a key or keys); return how many."""
        return protocol.run(cls._end_user_sessions(user_id, keep, reason))

    @classmethod
    async def aend_user_sessions(cls, user_id, *, keep=(), reason=events.ENDED_BY_USER):
        """End every session of ``user_id`` but those keyed ``keep``, on the asyncio client."""
        return await protocol.arun(cls._end_user_sessions(user_id, keep, reason))

    @classmethod
    def _end_user_sessions(cls, user_id, keep, reason):
        keep = (keep,) if isinstance(keep, str) else keep
        kept = {session_name(key) for key in keep if is_valid_session_id(key)}
        names = [name for name in (yield from index.user_names(user_id)) if name not in kept]
        ended = yield from index.end_sessions(user_id, names, kept=kept)
        cls._log_ended(user_id, ended, reason)
        return len(ended)

    def end_other_sessions(self, user_id, *, reason=events.ENDED_BY_USER):
        """End every session of ``user_id`` but this one; return how many."""
        return self.end_user_sessions(user_id, keep=self._kept(), reason=reason)

    async def aend_other_sessions(self, user_id, *, reason=events.ENDED_BY_USER):
        """End every session of ``user_id`` but this one, on the asyncio client."""
        return await self.aend_user_sessions(user_id, keep=self._kept(), reason=reason)

    def _kept(self):
        # An id this session is leaving ends with its next save, as a rotation, not here.
        leaving = self._move.old_key if self._move is not None else None
        return (self.session_key, leaving)

    @classmethod
    def end_all_sessions(cls, *, reason=events.ENDED_BY_COMMAND):
        """End every session in the store; return how many."""

        def log_ended(user_id, name):
            events.log_event(events.ENDED, reason=reason, user_id=user_id, session=session_handle(name))

        with store_errors():
            return index.end_everything(get_client(), on_ended=log_ended)

    @staticmethod
    def _log_ended(user_id, names, reason):
        for name in names:
            events.log_event(events.ENDED, reason=reason, user_id=user_id, session=session_handle(name))

    @classmethod
    def clear_expired(cls):
        """Prune per-user index entries of sessions that have ended; Redis expires the rest."""
        return protocol.run(cls._prune_all())

    @classmethod
    async def aclear_expired(cls):
        """Prune per-user index entries of sessions that have ended, on the asyncio client."""
        return await protocol.arun(cls._prune_all())

    @classmethod
    def _prune_all(cls):
        with store_errors():
            cluster = is_cluster(get_client())
        logged = events.logger.isEnabledFor(logging.DEBUG)
        return index.prune_all(cluster=cluster, on_pruned=_log_pruned if logged else None)


def _log_pruned(user_id, name):
    # One record per session that expired unseen, so DEBUG: a million of
    # them would cost clearsessions more than the pruning itself.
    events.log_event(
        events.PRUNED,
        reason=events.ENDED_EXPIRED,
        user_id=user_id,
        session=session_handle(name),
        level=logging.DEBUG,
    )
