"""
Settings for the session benchmark (``bench/run.py``), standalone from the site's.

``run.py`` starts a private redis-server and creates the databases first, then
passes their locations in BENCH_REDIS_URL, BENCH_SQLITE_PATH and (when
PostgreSQL answers) BENCH_POSTGRES_URL. The engine under test is switched with
``override_settings(SESSION_ENGINE=..., SESSION_CACHE_ALIAS=...)`` and
``bench.routing.SessionRouter``.
"""

import os

import dj_database_url

from sessiondemo.testing.probes import CountingConnection

SECRET_KEY = "bench-secret-key-not-for-production-" + "b3nch" * 8
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

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
# lets eight of them queue), PostgreSQL with synchronous_commit=off.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_SQLITE_PATH", ":memory:"),
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
SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
SESSION_COOKIE_AGE = 12 * 60 * 60
