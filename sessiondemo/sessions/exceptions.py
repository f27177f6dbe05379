from django.core.exceptions import SuspiciousOperation


class SessionStoreUnavailable(Exception):
    """Occurs when the session store cannot be reached in time."""


class SessionTooLarge(SuspiciousOperation):
    """Occurs when a session would grow past SESSION_REDIS_MAX_BYTES; nothing is written."""
