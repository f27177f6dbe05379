"""
Session lifecycle events, as log records under ``sessiondemo.sessions.events``.

Each record carries the user id and the session's handle (a keyed hash of it,
see keys.session_handle), never the session id: ``event=ended
reason=logout user=42 session=3f9a1c0d2b7e4a61``. The same values are on the
record as ``event``, ``reason``, ``user_id`` and ``session`` attributes.
"""

import logging

logger = logging.getLogger("sessiondemo.sessions.events")

CREATED = "created"
ROTATED = "rotated"
ENDED = "ended"
PRUNED = "pruned"

ENDED_BY_LOGOUT = "logout"
ENDED_BY_USER = "user"
ENDED_BY_ADMIN = "admin"
ENDED_BY_PASSWORD_CHANGE = "password-change"
ENDED_BY_PASSWORD_RESET = "password-reset"
ENDED_BY_DEACTIVATION = "account-deactivated"
ENDED_BY_DELETION = "account-deleted"
ENDED_BY_SESSION_CAP = "session-cap"
ENDED_BY_COMMAND = "command"
ENDED_EXPIRED = "expired"


def log_event(event, *, user_id, session, reason=None, level=logging.INFO, **details):
    """Log a session lifecycle ``event`` for ``user_id`` and the session handle ``session``."""
    if not logger.isEnabledFor(level):
        return
    fields = {"event": event, "reason": reason, "user": user_id, "session": session, **details}
    message = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
    extra = {"event": event, "reason": reason, "user_id": user_id, "session": session, **details}
    logger.log(level, message, extra=extra)
