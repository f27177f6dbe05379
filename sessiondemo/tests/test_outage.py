"""When Redis is down or silent: a 503 page fast, nothing half-done, recovery on its own."""

import socket
import time

import pytest
from django.conf import settings
from django.test import Client

from sessiondemo.testing.store import sessions_at

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
# The sessions cache's socket timeouts, plus room for a slow machine.
DEADLINE_SECONDS = 1.0 + 2.0


@pytest.fixture
def outage_client():
    return Client(raise_request_exception=False)


def log_in(client, user, password):
    return client.post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    )


def assert_unavailable(response):
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text
    for internal in ("Traceback", "Error", "127.0.0.1", "redis://", "socket"):
        assert internal not in response.text
    assert response["Retry-After"].isdigit()
    assert COOKIE not in response.cookies


def test_redis_down_means_503_then_recovery_without_restart(outage_client, user, password, redis_server, caplog):
    client = outage_client
    assert log_in(client, user, password).status_code == 302
    redis_server.stop()

    assert_unavailable(client.get("/profile/", secure=True))
    assert_unavailable(client.post("/accounts/logout/", secure=True))
    fresh = Client(raise_request_exception=False)
    assert fresh.get("/", secure=True).status_code == 200  # needs no session
    assert_unavailable(log_in(fresh, user, password))
    assert any(r.name == "sessiondemo.sessions" and r.levelname == "ERROR" for r in caplog.records)
    # The user's cookie survives the outage.
    assert client.cookies[COOKIE].value

    redis_server.start()

    # The server lost its memory (no persistence here): a logged-out visitor.
    assert client.get("/profile/", secure=True).status_code == 302
    assert log_in(fresh, user, password).status_code == 302
    assert fresh.get("/profile/", secure=True).status_code == 200


@pytest.fixture
def silent_redis():
    """A socket that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def test_a_silent_redis_answers_503_within_the_timeout(outage_client, silent_redis):
    outage_client.cookies[COOKIE] = "a" * 32
    with sessions_at(silent_redis):
        started = time.monotonic()
        response = outage_client.get("/profile/", secure=True)
        elapsed = time.monotonic() - started

    assert_unavailable(response)
    assert elapsed < DEADLINE_SECONDS
