"""When Redis is down or silent: a 503 page fast, nothing half-done, recovery on its own."""

import time

import pytest
from django.conf import settings
from django.test import Client

from sessiondemo.sessions.keys import new_session_id
from sessiondemo.testing.redis_server import silent_redis
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.web import assert_unavailable, submit_login

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
# The sessions cache's socket timeouts, plus room for a slow machine.
DEADLINE_SECONDS = 1.0 + 2.0


@pytest.fixture
def outage_client():
    return Client(raise_request_exception=False)


def test_redis_down_means_503_then_recovery_without_restart(outage_client, user, password, redis_server, caplog):
    client = outage_client
    assert submit_login(client, user, password).status_code == 302
    redis_server.stop()

    assert_unavailable(client.get("/profile/", secure=True))
    assert_unavailable(client.post("/accounts/logout/", secure=True))
    fresh = Client(raise_request_exception=False)
    assert fresh.get("/", secure=True).status_code == 200  # needs no session
    assert_unavailable(submit_login(fresh, user, password))
    assert any(r.name == "sessiondemo.sessions" and r.levelname == "ERROR" for r in caplog.records)
    # The user's cookie survives the outage.
    assert client.cookies[COOKIE].value

    redis_server.start()

    # The server lost its memory (no persistence here): a logged-out visitor.
    assert client.get("/profile/", secure=True).status_code == 302
    assert submit_login(fresh, user, password).status_code == 302
    assert fresh.get("/profile/", secure=True).status_code == 200


def test_a_silent_redis_answers_503_within_the_timeout(outage_client):
    outage_client.cookies[COOKIE] = new_session_id()
    with silent_redis() as url, sessions_at(url):
        started = time.monotonic()
        response = outage_client.get("/profile/", secure=True)
        elapsed = time.monotonic() - started

    assert_unavailable(response)
    assert elapsed < DEADLINE_SECONDS
