"""Operations on all the sessions of a user, or of everyone, through the per-user index."""

from . import events, index
from .connection import get_client, store_errors
from .keys import session_digest, session_handle


class UserSessionsMixin:
    """The per-user side of SessionStore: list, end, and prune a user's sessions."""

    @classmethod
    def user_sessions(cls, user_id):
        """Return the live sessions of ``user_id`` (index.SessionInfo, no ids) in two round trips."""
        with store_errors():
            return index.sessions_of(get_client(), user_id)

    @classmethod
    def end_user_session(cls, user_id, handle, *, reason=events.ENDED_BY_USER):
        """End the session of ``user_id`` whose handle is ``handle``; return whether one ended."""
        with store_errors():
            client = get_client()
            digest = index.find_digest(client, user_id, handle)
            ended = index.end_sessions(client, user_id, [digest]) if digest else []
        cls._log_ended(user_id, ended, reason)
        return bool(ended)

    @classmethod
    def end_user_sessions(cls, user_id, *, keep=(), reason=events.ENDED_BY_USER):
        """End every session of ``user_id`` but those keyed ``keep`` (a key or keys); return how many."""
        keep = (keep,) if isinstance(keep, str) else keep
        kept = {session_digest(key) for key in keep if key}
        with store_errors():
            client = get_client()
            digests = [d for d in index.user_digests(client, user_id) if d not in kept]
            ended = index.end_sessions(client, user_id, digests)
        cls._log_ended(user_id, ended, reason)
        return len(ended)

    def end_other_sessions(self, user_id, *, reason=events.ENDED_BY_USER):
        """End every session of ``user_id`` but this one; return how many."""
        # An id this session just left ends with its next save, as a rotation, not here.
        retired = self._retired[0] if self._retired else None
        return self.end_user_sessions(user_id, keep=(self.session_key, retired), reason=reason)

    @classmethod
    def end_all_sessions(cls, *, reason=events.ENDED_BY_COMMAND):
        """End every session in the store; return how many."""

        def log_ended(user_id, digest):
            events.log_event(
                events.ENDED, reason=reason, user_id=user_id, session=session_handle(digest)
            )

        with store_errors():
            return index.end_everything(get_client(), on_ended=log_ended)

    @staticmethod
    def _log_ended(user_id, digests, reason):
        for digest in digests:
            events.log_event(
                events.ENDED, reason=reason, user_id=user_id, session=session_handle(digest)
            )

    @classmethod
    def clear_expired(cls):
        """Prune per-user index entries of sessions that have ended; Redis expires the rest."""

        def log_pruned(user_id, digest):
            events.log_event(
                events.PRUNED,
                reason=events.ENDED_EXPIRED,
                user_id=user_id,
                session=session_handle(digest),
            )

        with store_errors():
            return index.prune_all(get_client(), on_pruned=log_pruned)
