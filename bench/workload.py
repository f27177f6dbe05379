"""The session a logged-in visitor carries, and the four operations timed on it."""

import hashlib

BACKEND = "django.contrib.auth.backends.ModelBackend"


def payload(user_id):
    """Return a logged-in session: Django's three auth keys, five small app keys (348 B of JSON)."""
    return {
        "_auth_user_id": str(user_id),
        "_auth_user_backend": BACKEND,
        # Django's session auth hash: a SHA-256 HMAC as 64 hex digits.
        "_auth_user_hash": hashlib.sha256(f"user-{user_id}".encode()).hexdigest(),
        "cart": [{"sku": "SKU-1042", "qty": 2}, {"sku": "SKU-2211", "qty": 1}],
        "theme": "dark",
        "locale": "en-gb",
        "last_page": "/profile/",
        "seen_tips": ["welcome", "tour"],
    }


def create(store, user_id):
    """Log a user in: a new session with the whole payload, saved; return its key."""
    session = store()
    session.update(payload(user_id))
    session.save()
    return session.session_key


def load(store, session_key, user_id):
    """Serve a read-only request: open the session and read the user id."""
    session = store(session_key)
    if session["_auth_user_id"] != str(user_id):
        raise AssertionError(f"session {session_key!r} lost its user")


def update(store, session_key, number):
    """Serve a request that changes one key: open, change, save."""
    session = store(session_key)
    session["last_page"] = f"/items/{number}/"
    session.save()


def delete(store, session_key):
    """Log out: open the session (auth reads it first), then flush it."""
    session = store(session_key)
    session["_auth_user_id"]  # noqa: B018 - what request.user costs before logout()
    session.flush()
