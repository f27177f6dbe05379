"""
SEC-38: ``manage.py check --deploy`` is clean on the production settings,
nothing is silenced beyond the documented HSTS-preload decision, and each of
the project's own deploy checks (sessiondemo/checks.py) fires on the setting
it guards. See docs/security.md.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Info, Warning
from django.core.management.utils import get_random_secret_key
from django.test import override_settings
from django.utils.csp import CSP

from sessiondemo import checks
from sessiondemo.testing.redis_server import free_port
from sessiondemo.testing.store import sessions_at

BASE_DIR = Path(__file__).resolve().parents[2]
# W001-W003 say Django's middleware is missing by its path: sessiondemo.checks
# runs them on the site's subclasses of it instead.
RUN_AGAIN = {"security.W001", "security.W002", "security.W003"}
ALLOWED_SILENCED = {"security.W021", *RUN_AGAIN}


def production_env(redis_url, **extra):
    """The environment of a production deployment, its Redis being the suite's own."""
    assert redis_url.startswith(("redis://127.0.0.1:", "rediss://127.0.0.1:"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SESSION_", "EMAIL_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="sessiondemo.settings.base",
        DJANGO_SECRET_KEY=get_random_secret_key() + get_random_secret_key(),
        DJANGO_ALLOWED_HOSTS="sessions.example.com",
        DJANGO_SITE_URL="https://sessions.example.com",
        EMAIL_HOST="smtp.example.com",
        REDIS_URL=redis_url,
    )
    env.update(extra)
    return env


def run(args, env):
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=120
    )


def ids(messages):
    return {message.id for message in messages}


# -- The production settings ---------------------------------------------------------


def test_sec38_check_deploy_passes_on_the_production_settings(redis_server):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(redis_server.url))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    # The eviction check reached the suite's Redis (no "could not read" Info).
    assert "sessiondemo.I009" not in result.stdout + result.stderr


def test_sec38_check_deploy_fails_on_development_settings(redis_server):
    env = production_env(redis_server.url, DJANGO_DEBUG="true", DJANGO_ALLOWED_HOSTS="*")
    env.pop("DJANGO_SECRET_KEY")

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode != 0
    output = result.stdout + result.stderr
    for check_id in ("security.W018", "security.W009", "sessiondemo.W003"):
        assert check_id in output, check_id


@pytest.mark.parametrize("preload", [None, "true"])
def test_sec38_only_the_hsts_preload_warning_may_be_silenced(redis_server, preload):
    extra = {"DJANGO_SECURE_HSTS_PRELOAD": preload} if preload else {}
    code = "import json, sessiondemo.settings.base as s; print(json.dumps(getattr(s, 'SILENCED_SYSTEM_CHECKS', [])))"

    result = run(["-c", code], production_env(redis_server.url, **extra))

    assert result.returncode == 0, result.stderr
    silenced = set(json.loads(result.stdout))
    assert silenced <= ALLOWED_SILENCED
    if preload:
        assert silenced == RUN_AGAIN


def test_sec38_the_test_settings_silence_nothing_else(settings):
    assert set(getattr(settings, "SILENCED_SYSTEM_CHECKS", [])) <= ALLOWED_SILENCED


@pytest.mark.parametrize(
    ("subclass", "warning"),
    [
        ("sessiondemo.middleware.SecurityMiddleware", "sessiondemo.security.W001"),
        ("sessiondemo.middleware.XFrameOptionsMiddleware", "sessiondemo.security.W002"),
        ("sessiondemo.middleware.CsrfViewMiddleware", "sessiondemo.security.W003"),
    ],
)
def test_sec38_the_checks_django_runs_on_its_own_middleware_run_on_the_sites_subclasses(settings, subclass, warning):
    assert warning not in ids(checks.check_django_middleware(None))
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if path != subclass]

    assert warning in ids(checks.check_django_middleware(None))


def test_sec38_and_so_do_djangos_checks_of_the_settings_that_middleware_serves(settings):
    found = {"security.W004", "security.W019", "security.W016"}
    assert not found & ids(checks.check_django_middleware(None))
    settings.SECURE_HSTS_SECONDS = 0
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    settings.CSRF_COOKIE_SECURE = False

    assert found <= ids(checks.check_django_middleware(None))


def test_sec38_the_projects_checks_find_nothing_on_the_suites_settings():
    messages = [
        *checks.check_cookies(None),
        *checks.check_csp(None),
        *checks.check_allowed_hosts(None),
        *checks.check_https(None),
        *checks.check_site_url(None),
        *checks.check_session_store(None),
        *checks.check_eviction_policy(None),
        *checks.check_django_csp_nonce(None),
    ]

    assert messages == []


def test_sec38_the_projects_checks_are_registered_as_deploy_checks():
    from django.core.checks.registry import registry

    deploy = registry.get_checks(include_deployment_checks=True)
    for check in (
        checks.check_cookies,
        checks.check_csp,
        checks.check_allowed_hosts,
        checks.check_https,
        checks.check_site_url,
        checks.check_session_store,
        checks.check_eviction_policy,
    ):
        assert check in deploy
        assert "security" in check.tags


# -- Each check fires on the setting it guards -------------------------------------------

COOKIE_PROBLEMS = [
    {"SESSION_COOKIE_NAME": "sessionid"},
    {"SESSION_COOKIE_SECURE": False},
    {"SESSION_COOKIE_SECURE": "1"},
    {"SESSION_COOKIE_PATH": "/app/"},
    {"SESSION_COOKIE_DOMAIN": ".example.com"},
    {"SESSION_COOKIE_SAMESITE": "None"},
    {"SESSION_COOKIE_SAMESITE": None},
    {"SESSION_COOKIE_HTTPONLY": False},
    {"CSRF_COOKIE_NAME": "csrftoken"},
    {"CSRF_COOKIE_SECURE": False},
    {"CSRF_COOKIE_SAMESITE": "None"},
    {"CSRF_USE_SESSIONS": True},
]


@pytest.mark.parametrize("bad", COOKIE_PROBLEMS, ids=lambda bad: next(iter(bad)))
def test_sec38_w001_fires_on_a_weak_cookie_setting(bad):
    with override_settings(**bad):
        messages = checks.check_cookies(None)

    assert ids(messages) == {"sessiondemo.W001"}
    assert isinstance(messages[0], Warning)
    assert next(iter(bad)) in messages[0].msg


def weak_csp(**changes):
    from django.conf import settings

    policy = copy.deepcopy(settings.SECURE_CSP)
    for directive, sources in changes.items():
        if sources is None:
            policy.pop(directive, None)
        else:
            policy[directive] = sources
    return policy


@pytest.mark.parametrize(
    "policy",
    [
        {},
        weak_csp(**{"object-src": None}),
        weak_csp(**{"base-uri": [CSP.SELF]}),
        weak_csp(**{"frame-ancestors": None}),
        weak_csp(**{"script-src": [CSP.SELF, CSP.UNSAFE_INLINE]}),
        weak_csp(**{"script-src": [CSP.SELF, CSP.UNSAFE_EVAL]}),
        weak_csp(**{"script-src": None, "default-src": None}),
    ],
    ids=["empty", "no-object-src", "base-uri-self", "no-frame-ancestors", "unsafe-inline", "unsafe-eval", "no-script-src"],
)
def test_sec38_w002_fires_on_a_missing_or_weak_csp(policy):
    with override_settings(SECURE_CSP=policy):
        assert ids(checks.check_csp(None)) == {"sessiondemo.W002"}


def test_sec38_w002_fires_without_the_csp_middleware(settings):
    middleware = [m for m in settings.MIDDLEWARE if not m.endswith(".ContentSecurityPolicyMiddleware")]
    assert len(middleware) == len(settings.MIDDLEWARE) - 1

    with override_settings(MIDDLEWARE=middleware):
        assert ids(checks.check_csp(None)) == {"sessiondemo.W002"}


@pytest.mark.parametrize("hosts", [["*"], ["sessions.example.com", "*"], ["."]])
def test_sec38_w003_fires_on_a_wildcard_allowed_host(hosts):
    with override_settings(ALLOWED_HOSTS=hosts):
        assert ids(checks.check_allowed_hosts(None)) == {"sessiondemo.W003"}


@pytest.mark.parametrize(
    "bad",
    [{"SECURE_HSTS_SECONDS": 3600}, {"SECURE_HSTS_SECONDS": 0}, {"SECURE_HSTS_INCLUDE_SUBDOMAINS": False}],
    ids=["an-hour", "off", "no-subdomains"],
)
def test_sec38_w004_fires_on_short_or_narrow_hsts(bad):
    with override_settings(**bad):
        assert ids(checks.check_https(None)) == {"sessiondemo.W004"}


def sessions_cache(**changes):
    from django.conf import settings

    caches = copy.deepcopy(settings.CACHES)
    options = changes.pop("OPTIONS", {})
    caches["sessions"].update(changes)
    caches["sessions"]["OPTIONS"].update(options)
    return caches


@pytest.mark.parametrize(
    "location",
    ["redis://sessions.internal.example:6379/0", "redis://10.0.0.5:6379/0", "redis://:secret@203.0.113.9:6379/0"],
)
def test_sec38_w005_fires_on_a_remote_redis_without_tls(location):
    # The check reads the URL only; it never connects to it.
    with override_settings(CACHES=sessions_cache(LOCATION=location)):
        messages = checks.check_session_store(None)

    assert ids(messages) == {"sessiondemo.W005"}
    assert "secret" not in messages[0].msg


@pytest.mark.parametrize(
    "location",
    ["rediss://sessions.internal.example:6380/0", "redis://127.0.0.1:6379/0", "redis://localhost:6379/0", "unix:///run/redis.sock"],
)
def test_sec38_w005_accepts_tls_and_local_redis(location):
    with override_settings(CACHES=sessions_cache(LOCATION=location)):
        assert checks.check_session_store(None) == []


def test_sec38_w011_fires_on_remote_sentinels_without_a_password():
    remote = {"SENTINELS": [("10.0.0.5", 26379)]}
    with override_settings(CACHES=sessions_cache(LOCATION="rediss://mymaster/0", OPTIONS=remote)):
        assert ids(checks.check_session_store(None)) == {"sessiondemo.W011"}
    guarded = {**remote, "SENTINEL_KWARGS": {"password": "s3cret"}}
    with override_settings(CACHES=sessions_cache(LOCATION="rediss://mymaster/0", OPTIONS=guarded)):
        assert checks.check_session_store(None) == []


def test_sec38_w006_fires_when_redis_errors_are_ignored():
    with override_settings(CACHES=sessions_cache(OPTIONS={"IGNORE_EXCEPTIONS": True})):
        assert ids(checks.check_session_store(None)) == {"sessiondemo.W006"}


def test_sec38_w007_fires_on_a_non_json_serializer():
    with override_settings(SESSION_SERIALIZER="myproject.serializers.PickleSerializer"):
        assert ids(checks.check_session_store(None)) == {"sessiondemo.W007"}


@pytest.mark.parametrize(
    "bad",
    [
        {"SESSION_COOKIE_AGE": 14 * 24 * 3600},
        {"SESSION_COOKIE_AGE": 0},
        {"SESSION_REDIS_ABSOLUTE_AGE": 0},
        {"SESSION_REDIS_ABSOLUTE_AGE": 7 * 24 * 3600},
        {"SESSION_COOKIE_AGE": 3600, "SESSION_REDIS_ABSOLUTE_AGE": 1800},
    ],
    ids=["two-weeks-idle", "no-idle", "no-absolute", "week-absolute", "idle-past-absolute"],
)
def test_sec38_w008_fires_on_loose_timeouts(bad):
    with override_settings(**bad):
        assert ids(checks.check_session_store(None)) == {"sessiondemo.W008"}


def test_sec38_w009_fires_when_the_session_redis_may_evict_sessions(redis):
    redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        messages = checks.check_eviction_policy(None)
    finally:
        redis.config_set("maxmemory-policy", "noeviction")

    assert ids(messages) == {"sessiondemo.W009"}
    assert "allkeys-lru" in messages[0].msg
    assert checks.check_eviction_policy(None) == []


def test_sec38_i009_says_so_when_the_session_redis_cannot_be_asked():
    closed = f"redis://127.0.0.1:{free_port()}/0"

    with sessions_at(closed):
        messages = checks.check_eviction_policy(None)

    assert ids(messages) == {"sessiondemo.I009"}
    assert isinstance(messages[0], Info)


def test_sec38_w005_judges_a_sentinel_setup_by_where_its_sentinels_are():
    def sentinel_cache(*sentinels):
        return sessions_cache(LOCATION="redis://mymaster/0", OPTIONS={"SENTINELS": list(sentinels)})

    with override_settings(CACHES=sentinel_cache(("127.0.0.1", 26379), ("localhost", 26380))):
        assert checks.check_session_store(None) == []
    with override_settings(CACHES=sentinel_cache(("127.0.0.1", 26379), ("sentinel-2.internal.example", 26379))):
        # Remote sentinels without a password are W011's, below.
        assert ids(checks.check_session_store(None)) == {"sessiondemo.W005", "sessiondemo.W011"}
