"""Read-only questions about accounts and their sessions."""

import dataclasses
from datetime import UTC, datetime

from django.contrib.auth import get_user_model

from . import emails, engine, usernames
from .user_agents import describe

EPOCH = datetime.fromtimestamp(0, UTC)


@dataclasses.dataclass(frozen=True)
class SessionRow:
    """One active session of an account, as shown to its owner or an administrator."""

    handle: str
    device: str
    ip: str
    signed_in_at: datetime | None
    last_active: datetime | None
    is_current: bool


def session_list_for_user(*, user, current=None) -> list[SessionRow] | None:
    """
    Return ``user``'s live sessions, this one first, then the most recently active.

    None if the session engine cannot list them (engine.lists_user_sessions()).
    """
    sessions = engine.user_sessions(user.pk)
    if sessions is None:
        return None
    current_handle = engine.handle(current) if current is not None else None
    rows = [
        SessionRow(
            handle=info.handle,
            device=describe(info.user_agent),
            ip=info.ip or "unknown",
            signed_in_at=info.created_at,
            last_active=info.last_active,
            is_current=info.handle == current_handle,
        )
        for info in sessions
    ]
    rows.sort(key=lambda row: (not row.is_current, -(row.last_active or EPOCH).timestamp()))
    return rows


def username_in_use(*, username, other_than=None) -> bool:
    """Return whether an account other than ``other_than`` has ``username``, in any spelling."""
    name = usernames.canonical(username)
    return bool(name) and _others(other_than).filter(username_canonical=name).exists()


def email_in_use(*, email, other_than=None) -> bool:
    """Return whether an account other than ``other_than`` has ``email``, in any spelling."""
    address = emails.canonical(email)
    return address is not None and _others(other_than).filter(email_canonical=address).exists()


def _others(user):
    users = get_user_model()._default_manager.all()
    return users.exclude(pk=user.pk) if user is not None and user.pk is not None else users


def user_for_password_reset(*, email):
    """Return the active account with a usable password whose address is ``email``, or None."""
    address = emails.canonical(email)
    if address is None:
        return None  # email_canonical=None would match every account without an address
    user = get_user_model()._default_manager.filter(email_canonical=address, is_active=True).first()
    return user if user is not None and user.has_usable_password() else None
