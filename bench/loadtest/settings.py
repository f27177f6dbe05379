"""
Settings for the load test (``make loadtest``): the site's own, with what a load test must change.

The servers run the site's real stack (``sessiondemo.settings.base``: middleware,
authentication, logging, cookies, the sessions alias on django-redis); what
differs is listed here, and each item is read from the environment that
``bench/loadtest/run.py`` gives every server it starts:

- ``LOADTEST_ENGINE``: ``ours`` (``sessiondemo.sessions.backend``) or ``cache``
  (``django.contrib.sessions.backends.cache`` on the same django-redis alias,
  ``CACHES["sessions"]`` at ``REDIS_URL``). Only SESSION_ENGINE differs.
- ``SESSION_REDIS_NATIVE_ASYNC``: ``false`` sends our engine's async methods
  through sync_to_async (the engine's own setting; harmless where it has none).
- ``DATABASE_URL``: SQLite (the run's own file) unless it names PostgreSQL.

Loosened, because every virtual user logs in from 127.0.0.1 and a load test
measures sessions, not password hashing:

- PASSWORD_HASHERS: MD5, so that a login costs what its session costs, not
  PBKDF2's hundreds of milliseconds (as the test suite and ``make bench`` do).
- ACCOUNTS_LOGIN_FAILURES_PER_IP: a password check reserves an attempt on its
  client network's budget before it is verified, and 64 users share one
  address: at the site's 30, a burst of first logins would be refused with 429.
- SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE: for the same shared address.
- SECURE_SSL_REDIRECT: off, as the servers speak plain HTTP on loopback. The
  cookies stay ``Secure`` and ``__Host-``; the load generator sends them back.

The per-user session cap (SESSION_REDIS_MAX_PER_USER, 20) stays: a user logs
out at the end of every iteration, so it never has more than one live session.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "loadtest-secret-key-not-for-production-" + "l0ad" * 8)

from sessiondemo.settings.base import *  # noqa: E402, F403
from sessiondemo.settings.base import DATABASES, env_bool  # noqa: E402

ENGINES = {
    "ours": "sessiondemo.sessions.backend",
    "cache": "django.contrib.sessions.backends.cache",
}
SESSION_ENGINE = ENGINES[os.environ.get("LOADTEST_ENGINE", "ours")]
# Our engine's async methods: natively on redis.asyncio (true), or Django's
# sync_to_async fallbacks (false).
SESSION_REDIS_NATIVE_ASYNC = env_bool("SESSION_REDIS_NATIVE_ASYNC", True)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ACCOUNTS_LOGIN_FAILURES_PER_IP = 1_000_000
SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 1_000_000
SECURE_SSL_REDIRECT = False

# SQLite with concurrent writers (logins write last_login, password changes the
# user): WAL, so that readers never wait for a writer; IMMEDIATE transactions,
# so that a writer waits for the lock at BEGIN (with the busy timeout) instead
# of failing on an upgrade; synchronous=NORMAL, as is usual with WAL.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
