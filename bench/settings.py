"""
Settings for the session benchmark (``bench/run.py``): the site's own, with the stores swapped.

Everything the site configures (apps, middleware, authentication, logging,
the session cookie) comes from ``sessiondemo.settings.base``, so that the
end-to-end requests (bench/web.py) pass through the site's real stack. What
differs is listed below: the caches and databases the run creates, one
setting per engine switched with ``override_settings(SESSION_ENGINE=...,
SESSION_CACHE_ALIAS=...)`` and ``bench.routing.SessionRouter``, a cheap
password hasher, and logs written to /dev/null instead of the console.

``run.py`` starts a private redis-server and creates the databases first, then
passes their locations in BENCH_REDIS_URL, BENCH_SQLITE_PATH and (when
PostgreSQL answers) BENCH_POSTGRES_URL.
"""

import copy
import os

import dj_database_url

os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret-key-not-for-production-" + "b3nch" * 8)

from sessiondemo.settings.base import *  # noqa: E402, F403
from sessiondemo.settings.base import INSTALLED_APPS, LOGGING  # noqa: E402
from sessiondemo.testing.probes import CountingConnection  # noqa: E402

DEBUG = False
# The Host the benchmark's requests name; they are HTTPS (wsgi.url_scheme), as in production.
ALLOWED_HOSTS = ["localhost"]
ROOT_URLCONF = "bench.urls"
# For the engines that store sessions in a database.
INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.sessions"]
# A login checks a password; the site's PBKDF2 would take most of a second
# each time, and costs the same with every engine.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405

# The site's logging, formatted as on the console, written nowhere: each
# session event our engine logs still costs what it costs in production.
LOGGING = copy.deepcopy(LOGGING)
LOGGING["handlers"]["console"] = {
    "class": "logging.FileHandler",
    "filename": os.devnull,
    "formatter": "plain",
    "filters": ["escape_controls"],
}

# Until run.py sets it, a port where nothing listens: never a developer's Redis.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:9/0")

# Every Redis-backed engine gets the same connection class, which counts round
# trips (bench/counters.py) at the same microsecond or so for each, and the
# same 1 s timeouts as the site's alias.
POOL_KWARGS = {"connection_class": CountingConnection, "health_check_interval": 0}
TIMEOUTS = {"SOCKET_CONNECT_TIMEOUT": 1.0, "SOCKET_TIMEOUT": 1.0}

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Ours, configured as the site configures it (JSON, 1 s timeouts).
    "sessiondemo": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            **TIMEOUTS,
            "CONNECTION_POOL_KWARGS": POOL_KWARGS,
        },
    },
    # django-redis as its README recommends for sessions: default (pickle) serializer.
    "django-redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            **TIMEOUTS,
            "CONNECTION_POOL_KWARGS": POOL_KWARGS,
        },
    },
    # Django's own Redis cache backend (pickle too).
    "django-builtin": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": POOL_KWARGS | {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
    },
}

# No store waits for the disk on a write, as Redis here runs without
# persistence: SQLite in WAL mode with synchronous=NORMAL (IMMEDIATE
# transactions, as Django advises for concurrent writers, and a timeout that
# lets eight of them queue), PostgreSQL with synchronous_commit=off. The
# site's users live in SQLite too, kept open between requests as the site does.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_SQLITE_PATH", ":memory:"),
        "CONN_MAX_AGE": 60,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    },
}
if os.environ.get("BENCH_POSTGRES_URL"):
    DATABASES["postgres"] = dj_database_url.parse(os.environ["BENCH_POSTGRES_URL"])
    DATABASES["postgres"]["OPTIONS"] = {"options": "-c synchronous_commit=off"}
DATABASE_ROUTERS = ["bench.routing.SessionRouter"]

SESSION_ENGINE = "sessiondemo.sessions.backend"
SESSION_CACHE_ALIAS = "sessiondemo"
