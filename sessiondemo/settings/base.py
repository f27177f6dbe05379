"""
Settings for sessiondemo, read from the environment with safe defaults.

Production needs DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS; everything else
has a default that is safe to deploy. See README.md for the full list.
https://docs.djangoproject.com/en/6.1/ref/settings/
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from redis.sentinel import SentinelManagedSSLConnection

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name, default=False):
    """Return the environment variable ``name`` read as a boolean."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default):
    """Return the comma-separated environment variable ``name`` as a list."""
    value = os.environ.get(name, default)
    return [item.strip() for item in value.split(",") if item.strip()]


# Core
# https://docs.djangoproject.com/en/6.1/howto/deployment/checklist/

# SECURITY WARNING: don't run with debug turned on in production!
DEBUG = env_bool("DJANGO_DEBUG", False)

# SECURITY WARNING: keep the secret key used in production secret!
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value "
            "(python -c 'from django.core.management.utils import "
            "get_random_secret_key as g; print(g())'), or set DJANGO_DEBUG=true "
            "for local development."
        )
    # Development only: a key that changes with every start would log everyone
    # out on each autoreload, so use a fixed, obviously unsafe one.
    SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

# The site's own address (scheme, host and port only). Every absolute URL the
# site builds starts with it: links in mail, the https redirect. Never the
# request's Host header, which ALLOWED_HOSTS checks by name only, not by port.
# Production must set it (check --deploy says so); https there.
SITE_URL = os.environ.get("DJANGO_SITE_URL", "http://localhost:8000" if DEBUG else "").strip()


# Applications

INSTALLED_APPS = [
    "sessiondemo.apps.SessionDemoConfig",
    # accounts comes before Django's apps so that its templates win.
    "accounts",
    "profiles",
    "sessiondemo.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.humanize",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

# Under ASGI each runs on the event loop, never in a thread: the site's own,
# and subclasses of Django's in sessiondemo.middleware.
MIDDLEWARE = [
    # /healthz and /readyz, answered before the Host is checked or a session touched.
    "sessiondemo.health.HealthCheckMiddleware",
    "sessiondemo.middleware.SecurityMiddleware",
    # Outside CommonMiddleware, so that even its 400 for a bad Host carries them.
    "sessiondemo.middleware.XFrameOptionsMiddleware",
    "sessiondemo.middleware.ContentSecurityPolicyMiddleware",
    # Before anything reads the request: text no UTF-8 store can hold is a 400.
    "sessiondemo.middleware.RequestTextMiddleware",
    "sessiondemo.sessions.middleware.SessionMiddleware",
    "sessiondemo.middleware.CommonMiddleware",
    "sessiondemo.middleware.CsrfViewMiddleware",
    "accounts.middleware.AuthenticationMiddleware",
    "accounts.middleware.LoginThrottleMiddleware",
    "sessiondemo.middleware.MessageMiddleware",
]

# Django's checks of SecurityMiddleware, XFrameOptionsMiddleware and
# CsrfViewMiddleware look for them by their own paths: the three that say
# "not in MIDDLEWARE" are silenced, and sessiondemo.checks runs all of them
# (and those of the settings they serve) on the subclasses above.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "sessiondemo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "sessiondemo.wsgi.application"


# Database: SQLite under the project unless DATABASE_URL names another one.
# https://docs.djangoproject.com/en/6.1/ref/settings/#databases

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}


# Redis and sessions
# The sessions live in Redis behind a dedicated django-redis alias; the engine
# uses its raw client, never the cache API (which would pickle).
# https://docs.djangoproject.com/en/6.1/topics/http/sessions/

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    },
    "sessions": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # JSON, not pickle, should anything ever use the cache API here.
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            # A session store must fail loudly and fast, never return "no
            # session" for "no Redis"; so no IGNORE_EXCEPTIONS.
            "SOCKET_CONNECT_TIMEOUT": 1.0,
            "SOCKET_TIMEOUT": 1.0,
            "CONNECTION_POOL_KWARGS": {"health_check_interval": 30},
        },
    },
}

# Redis Sentinel: REDIS_SENTINELS="host:port,host:port" and a REDIS_URL that
# names the monitored primary instead of a host, e.g. redis://mymaster/0. The
# engine then always talks to the current primary, found through the sentinels.
if sentinels := env_list("REDIS_SENTINELS", ""):
    CACHES["sessions"]["OPTIONS"].update(
        {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": [(host, int(port)) for host, port in (s.rsplit(":", 1) for s in sentinels)],
        }
    )
    if REDIS_URL.startswith("rediss://"):
        # TLS to the primary the sentinels name: redis-py's connection class
        # for that, which the pool would otherwise replace with a plain TLS one
        # aimed at the service's name.
        CACHES["sessions"]["OPTIONS"]["CONNECTION_POOL_KWARGS"]["connection_class"] = SentinelManagedSSLConnection
    # Sentinels that ask for a password of their own (requirepass in sentinel.conf).
    if sentinel_password := os.environ.get("REDIS_SENTINEL_PASSWORD"):
        CACHES["sessions"]["OPTIONS"]["SENTINEL_KWARGS"] = {"password": sentinel_password}

# Redis Cluster: REDIS_CLUSTER=true and a REDIS_URL naming one or more of its
# nodes, comma-separated, e.g. redis://10.0.0.1:6379,redis://10.0.0.2:6379 (no
# database number: a cluster has only 0). The engine then finds each key's node.
if env_bool("REDIS_CLUSTER", False):
    if sentinels:
        raise ImproperlyConfigured("Set REDIS_CLUSTER or REDIS_SENTINELS, not both.")
    CACHES["sessions"]["OPTIONS"]["CLIENT_CLASS"] = "sessiondemo.sessions.cluster.ClusterClient"

SESSION_ENGINE = "sessiondemo.sessions.backend"
SESSION_CACHE_ALIAS = "sessions"
SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
SESSION_COOKIE_NAME = "__Host-sessionid"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_PATH = "/"
SESSION_COOKIE_DOMAIN = None
# The cookie lives as long as the browser; Redis's TTL is the real expiry.
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Idle timeout: every request that reads the session slides its TTL back to this.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_IDLE_TIMEOUT", 30 * 60))
# Absolute timeout: no session outlives its login by more than this.
SESSION_REDIS_ABSOLUTE_AGE = int(os.environ.get("SESSION_ABSOLUTE_TIMEOUT", 12 * 60 * 60))
# A login past this many sessions of one account ends its oldest session.
SESSION_REDIS_MAX_PER_USER = 20
# The prefix of every Redis key the engine writes.
SESSION_REDIS_KEY_PREFIX = "sd:"
# A session that would grow past this many bytes is refused, and nothing written.
SESSION_REDIS_MAX_BYTES = 64 * 1024
# Renew the session id this many seconds after it was issued (0: never); the
# old id keeps working for SESSION_REDIS_RENEWAL_GRACE seconds for requests
# already in flight.
SESSION_REDIS_RENEW_AFTER = int(os.environ.get("SESSION_RENEW_AFTER", 0))
SESSION_REDIS_RENEWAL_GRACE = 60


# CSRF: a hardened cookie, never stored in the session (that would create a
# Redis session for every anonymous visitor who sees a form).

CSRF_COOKIE_NAME = "__Host-csrftoken"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_PATH = "/"
CSRF_COOKIE_DOMAIN = None
CSRF_USE_SESSIONS = False
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")


# Messages ride in a cookie, never in the session: a message for an anonymous
# visitor must not create a Redis session.
MESSAGE_STORAGE = "sessiondemo.messages.CookieStorage"


# Security headers
# https://docs.djangoproject.com/en/6.1/ref/csp/

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# HTTPS: redirect and a year of HSTS with subdomains, except in development.
# Behind a TLS-terminating proxy, set DJANGO_SECURE_PROXY_SSL_HEADER to the
# header it sets (e.g. "X-Forwarded-Proto") so that Django knows the request
# was secure; never set it without such a proxy.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# The redirect goes to the site's own host, not to whatever Host the request named.
SECURE_SSL_HOST = urlsplit(SITE_URL).netloc or None
SECURE_HSTS_SECONDS = 0 if DEBUG else 365 * 24 * 60 * 60
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    # Preloading is a commitment for the whole domain, made by submitting it
    # to the browsers' list; opt in with DJANGO_SECURE_HSTS_PRELOAD=true.
    SILENCED_SYSTEM_CHECKS += ["security.W021"]
if proxy_header := os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + proxy_header.upper().replace("-", "_"), "https")

# How many reverse proxies that append to X-Forwarded-For stand in front of
# the site. 0 (the default) trusts no header: the client is the TCP peer.
TRUSTED_PROXY_COUNT = int(os.environ.get("DJANGO_TRUSTED_PROXY_COUNT", 0))


# Authentication
# https://docs.djangoproject.com/en/6.1/topics/auth/customizing/

AUTH_USER_MODEL = "accounts.User"
# Django's ModelBackend, with every password check throttled (accounts/throttling.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/profile/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login throttling, for every password check (site and admin login,
# re-authentication, password change): an account is locked for the cool-off
# after this many failures within the window; a client IP after more
# failures, across accounts. Unknown session ids from one IP past a limit per minute get 429.
ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT = 5
ACCOUNTS_LOGIN_FAILURES_PER_IP = 30
ACCOUNTS_LOGIN_FAILURE_WINDOW = 15 * 60
ACCOUNTS_LOGIN_COOL_OFF = 15 * 60
SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 60
# What the session engine needs from the site, each a callable it would
# otherwise replace with a plain default (sessiondemo/sessions/conf.py): the
# client, as login throttling counts it (behind DJANGO_TRUSTED_PROXY_COUNT
# proxies; an IPv6 client by its network), and the site's 503 and 429 pages.
SESSION_REDIS_CLIENT_ADDRESS = "sessiondemo.clients.client_network"
SESSION_REDIS_UNAVAILABLE_RESPONSE = "sessiondemo.responses.service_unavailable"
SESSION_REDIS_TOO_MANY_RESPONSE = "sessiondemo.responses.too_many_requests"
# A browser that logged in gets a device cookie valid this long (seconds); with
# it, it has a budget of its own of ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT
# failures, so that guessers cannot lock the owner out (accounts/devices.py).
ACCOUNTS_DEVICE_COOKIE_AGE = 365 * 24 * 60 * 60
# Per-client budgets count an IPv6 client by this prefix of its address (one
# subscriber usually has a whole /64); an IPv4 client by its address.
CLIENT_IPV6_PREFIX_LENGTH = 64

# The forms anyone may post are limited per client IP, within this window
# (seconds): sign-ups (each answer says whether a username is taken), password
# reset requests, and visits of reset links (guesses included). One reset
# mail per address per interval, at most.
ACCOUNTS_THROTTLE_WINDOW = 15 * 60
ACCOUNTS_SIGNUPS_PER_IP = 10
ACCOUNTS_PASSWORD_RESETS_PER_IP = 5
ACCOUNTS_PASSWORD_RESET_LINKS_PER_IP = 20
ACCOUNTS_PASSWORD_RESET_MAIL_INTERVAL = 15 * 60

# Ending sessions from "Your sessions" asks for the password again once the
# session's last authentication is older than this (seconds).
ACCOUNTS_REAUTHENTICATE_AFTER = 10 * 60

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


# Internationalization

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True


# Static files
# runserver serves them from each app in development. With DEBUG off,
# collectstatic writes each under a name holding a hash of its content (so
# that it may be cached for good), with gzip and brotli copies, into
# STATIC_ROOT, and the servers' application serves them from there
# (sessiondemo/static.py).

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "sessiondemo.static.CompressedHashedStorage"
    },
}


# Email: the console in development; SMTP when EMAIL_HOST is set.
# https://docs.djangoproject.com/en/6.1/topics/email/

DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "sessiondemo <noreply@localhost>")

if os.environ.get("EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": os.environ["EMAIL_HOST"],
                "port": int(os.environ.get("EMAIL_PORT", 587)),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", True),
                "timeout": 10,
            },
        },
    }
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.console.EmailBackend",
        },
    }


# Tasks: slow work (sending mail) runs on a background thread of the web
# process, off the request path; at most MAX_QUEUED tasks wait. Not durable:
# what is still queued when the process stops is lost.
# https://docs.djangoproject.com/en/6.1/topics/tasks/

TASKS = {
    "default": {
        "BACKEND": "sessiondemo.tasks.ThreadBackend",
        "OPTIONS": {"MAX_QUEUED": 1000},
    },
}


# Logging: every record reaches the console through the root logger: the
# project's ("sessiondemo.*", and its security records under
# "django.security.sessiondemo.*"), Django's (whose default prints them only
# with DEBUG on) and any library's warnings. Every handler escapes control
# characters in messages, so that a newline in request data cannot forge a
# record (sessiondemo.logsafe).

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "escape_controls": {"()": "sessiondemo.logsafe.EscapeControls"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "quiet_health_checks": {"()": "sessiondemo.health.QuietHealthChecks"},
    },
    "formatters": {
        "plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["quiet_health_checks", "escape_controls"],
        },
        # As in Django's default: errors mailed to ADMINS in production.
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "escape_controls"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "sessiondemo": {"level": "INFO"},
        # Replaces Django's debug-only console; its records go on to the root's.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
    },
}
