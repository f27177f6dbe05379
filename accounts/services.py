"""Account actions that touch sessions."""

from sessiondemo.sessions.backend import SessionStore


def sessions_end_others(*, user, current) -> int:
    """End every session of ``user`` except the ``current`` one; return how many ended."""
    return SessionStore.end_user_sessions(user.pk, keep=current.session_key)
