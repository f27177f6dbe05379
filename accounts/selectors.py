"""Read-only questions about accounts and their sessions."""

import dataclasses
from datetime import UTC, datetime

from django.contrib.auth import get_user_model

from sessiondemo.sessions.backend import SessionStore

from . import emails
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


def session_list_for_user(*, user, current=None) -> list[SessionRow]:
    """Return ``user``'s live sessions, this one first, then the most recently active."""
    current_handle = current.handle if current is not None else None
    rows = [
        SessionRow(
            handle=info.handle,
            device=describe(info.user_agent),
            ip=info.ip or "unknown",
            signed_in_at=info.created_at,
            last_active=info.last_active,
            is_current=info.handle == current_handle,
        )
        for info in SessionStore.user_sessions(user.pk)
    ]
    rows.sort(key=lambda row: (not row.is_current, -(row.last_active or EPOCH).timestamp()))
    return rows


def users_for_password_reset(*, email) -> list:
    """Return the active accounts with a usable password whose address is ``email``."""
    address = emails.canonical(email)
    users = get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
    return [u for u in users if u.has_usable_password() and emails.canonical(u.email) == address]
