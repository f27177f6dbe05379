"""
What accounts asks of the session engine beyond Django's contract, asked in one place.

The site's engine (sessiondemo.sessions) lists a user's sessions and ends them
at once, records the browser and address of each, names each by a handle and
lets a Redis call ride along with a session's next write. Django's own engines
do none of this. Each call goes through here: with an engine that has the
method, it is made; with one that lacks it, accounts falls back to Django's
behaviour. A new password then ends the other sessions at their next request
(the session auth hash no longer matches), and so does deactivating an
account (its user is refused); "Your sessions", the admin and endsessions
say what they cannot do.
"""

from importlib import import_module

from django.conf import settings

# What "Your sessions", the admin and endsessions need: a user's sessions, listed and ended.
USER_SESSIONS = ("user_sessions", "end_user_session", "end_user_sessions", "end_other_sessions")


def store_class():
    """Return the SessionStore class of the configured SESSION_ENGINE."""
    return import_module(settings.SESSION_ENGINE).SessionStore


def lists_user_sessions() -> bool:
    """Return whether the engine can list a user's sessions and end them at once."""
    store = store_class()
    return all(callable(getattr(store, name, None)) for name in USER_SESSIONS)


def ends_all_sessions() -> bool:
    """Return whether the engine can end every session there is."""
    return callable(getattr(store_class(), "end_all_sessions", None))


def engine_name() -> str:
    return settings.SESSION_ENGINE


# -- One session ------------------------------------------------------------------------


def handle(session):
    """Return the opaque name the engine shows and logs ``session`` by, or None if it has none."""
    return getattr(session, "handle", None)


def new_id_at_login(session) -> None:
    """
    Give a session that logs in a new id unless it got one in this request.

    Django's login() keeps the id when the session's own user logs in again;
    this engine's sessions move anyway. With another engine, Django's rule stands.
    """
    if callable(getattr(session, "cycle_key_unless_new", None)):
        session.cycle_key_unless_new()


def record_client(session, *, ip, user_agent) -> None:
    """Store who uses ``session`` (IP address, User-Agent), if the engine keeps that."""
    if callable(getattr(session, "record_client", None)):
        session.record_client(ip=ip, user_agent=user_agent)


def run_with_next_write(session, calls) -> bool:
    """Send the Redis ``calls`` with ``session``'s next write and return True, if the engine can; else False."""
    if callable(getattr(session, "run_with_next_write", None)):
        session.run_with_next_write(calls)
        return True
    return False


# -- A user's sessions ------------------------------------------------------------------


def user_sessions(user_id):
    """Return the live sessions of ``user_id`` (the engine's SessionInfo), or None if it cannot list them."""
    if not lists_user_sessions():
        return None
    return store_class().user_sessions(user_id)


def end_user_session(user_id, session_handle, *, reason) -> bool:
    """End the session of ``user_id`` named ``session_handle``; return whether one ended (never, without the engine)."""
    if not lists_user_sessions():
        return False
    return store_class().end_user_session(user_id, session_handle, reason=reason)


def end_user_sessions(user_id, *, reason, keep=None) -> int:
    """
    End every session of ``user_id`` but the session ``keep``; return how many ended.

    Without the engine none can be ended now: 0, and Django's checks refuse
    them at their next request if their password or account changed.
    """
    if not lists_user_sessions():
        return 0
    if keep is not None:
        return keep.end_other_sessions(user_id, reason=reason)
    return store_class().end_user_sessions(user_id, reason=reason)


def end_all_sessions(*, reason) -> int:
    """End every session there is; return how many. Only for an engine that ends_all_sessions()."""
    return store_class().end_all_sessions(reason=reason)
