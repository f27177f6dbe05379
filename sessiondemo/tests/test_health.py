"""/healthz and /readyz, as a load balancer or an orchestrator's probe sees them (sessiondemo.health)."""

import logging
import time

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client

from sessiondemo.testing.redis_server import free_port, silent_redis
from sessiondemo.testing.store import sessions_at

pytestmark = pytest.mark.django_db

# Each check's timeout, plus room for a slow machine.
DEADLINE_SECONDS = 1.0 + 2.0


def probe(path, **extra):
    """GET ``path`` as a probe does: over plain HTTP, naming the server by its address."""
    return Client(raise_request_exception=False).get(path, HTTP_HOST="10.1.2.3:8000", **extra)


def assert_never_cached_and_cookieless(response):
    assert "no-store" in response["Cache-Control"] and "max-age=0" in response["Cache-Control"]
    assert not response.cookies
    assert response["Content-Type"].startswith("text/plain")


def test_healthz_answers_touching_no_redis_no_database_no_session(round_trips, django_assert_num_queries):
    with round_trips() as log, django_assert_num_queries(0):
        response = probe("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert_never_cached_and_cookieless(response)
    assert log.trips == []


def test_healthz_stays_up_while_redis_is_down():
    with sessions_at(f"redis://127.0.0.1:{free_port()}/0"):
        response = probe("/healthz")

    assert response.status_code == 200


def test_readyz_asks_redis_and_the_database_and_nothing_else(round_trips):
    with round_trips() as log:
        response = probe("/readyz")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert_never_cached_and_cookieless(response)
    # A PING; no session read, no throttle counter.
    assert log.trips == [["PING"]]


def test_readyz_names_redis_when_it_is_down_and_says_nothing_of_where_it_is():
    port = free_port()
    with sessions_at(f"redis://127.0.0.1:{port}/0"):
        response = probe("/readyz")

    assert response.status_code == 503
    assert response.content == b"not ready: redis\n"
    assert response["Retry-After"] == "1"
    assert_never_cached_and_cookieless(response)
    assert str(port).encode() not in response.content


def test_readyz_answers_within_the_deadline_when_redis_never_answers():
    with silent_redis() as url, sessions_at(url):
        started = time.monotonic()
        response = probe("/readyz")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.content == b"not ready: redis\n"
    assert elapsed < DEADLINE_SECONDS


def test_readyz_names_the_database_when_it_cannot_be_reached(monkeypatch):
    # A database that is not there: no such SQLite file's directory (or PostgreSQL database).
    settings_dict = connections.settings[DEFAULT_DB_ALIAS]
    monkeypatch.setitem(settings_dict, "NAME", "/nonexistent-directory/no-such-database")

    response = probe("/readyz")

    assert response.status_code == 503
    assert response.content == b"not ready: database\n"
    assert b"nonexistent" not in response.content


def test_only_gets_are_answered_early():
    response = Client(raise_request_exception=False).post("/healthz", HTTP_HOST="10.1.2.3:8000")

    # Anything else goes through the site as any request does (here: an unknown Host).
    assert response.status_code == 400


def test_health_checks_stay_out_of_the_access_log():
    console = next(h for h in logging.getLogger().handlers if h.name == "console")

    def shown(line):
        record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s', (line, "200", "3"), None)
        return bool(console.filter(record))

    assert not shown("GET /healthz HTTP/1.1")
    assert not shown("GET /readyz?full=1 HTTP/1.1")
    assert shown("GET /profile/ HTTP/1.1")
    assert shown("GET /healthz-of-something-else HTTP/1.1")
