class SessionStoreUnavailable(Exception):
    """Occurs when the session store cannot be reached in time."""


class SessionTooLarge(Exception):
    """Occurs when a session would grow past SESSION_REDIS_MAX_BYTES."""
