"""
Real Redis faults: a restart mid-traffic, a restart with persistence, a login
while Redis is down, and a Redis that accepts connections but never answers.

Each test runs its own redis-server (or silent socket); the site is pointed at
it for the test only (sessions_at), then back at the suite's Redis.
"""

import threading
import time

import pytest
from django.conf import settings
from django.test import Client

from sessiondemo.testing.redis_server import RedisServer, silent_redis
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.web import assert_unavailable, index_entries, session_keys, submit_login

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
# The sessions cache's socket timeouts, plus room for a slow machine.
DEADLINE_SECONDS = settings.CACHES["sessions"]["OPTIONS"]["SOCKET_TIMEOUT"] + 2.0
AOF = ["--appendonly", "yes", "--appendfsync", "always"]


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server for this test alone, with the site's sessions in it."""
    servers = []

    def start(args=()):
        server = RedisServer(tmp_path / "redis", args=args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_a_restart_mid_traffic_costs_503s_never_500s_and_the_site_recovers(own_redis, user, password):
    """
    A logged-in visitor keeps requesting /profile/ while Redis is killed and
    restarted (no persistence): 200s, then 503s while it is down, then 302s
    to the login page (the sessions went with Redis's memory); never a 500.
    Logging in again works without restarting Django.
    """
    server = own_redis()
    client = Client(raise_request_exception=False)
    statuses = []
    with sessions_at(server.url):
        assert submit_login(client, user, password).status_code == 302
        for i in range(40):
            if i == 10:
                server.stop()
            if i == 25:
                server.start()
            statuses.append(client.get("/profile/", secure=True).status_code)

        assert statuses == [200] * 10 + [503] * 15 + [302] * 15, statuses
        assert submit_login(client, user, password).status_code == 302
        response = client.get("/profile/", secure=True)
    assert response.status_code == 200
    assert user.username in response.text


def test_a_kill_while_requests_are_in_flight_is_never_a_500(own_redis, user, password):
    """
    The same with Redis killed and restarted from another thread, wherever the
    requests happen to be (mid-pipeline, mid-reply): only 200, 503 or 302.
    """
    server = own_redis()
    client = Client(raise_request_exception=False)
    kill, restart, restarted = threading.Event(), threading.Event(), threading.Event()

    def operator():
        kill.wait(10)
        server.stop()
        restart.wait(10)
        server.start()
        restarted.set()

    statuses = []
    with sessions_at(server.url):
        assert submit_login(client, user, password).status_code == 302
        thread = threading.Thread(target=operator)
        thread.start()
        try:
            for i in range(40):
                if i == 10:
                    kill.set()
                if i == 25:
                    restart.set()
                if i == 30:
                    assert restarted.wait(10)
                statuses.append(client.get("/profile/", secure=True).status_code)
        finally:
            kill.set()
            restart.set()
            thread.join(20)

        assert set(statuses) <= {200, 302, 503}, statuses
        assert statuses[:10] == [200] * 10 and statuses[30:] == [302] * 10, statuses
        assert submit_login(client, user, password).status_code == 302
        assert client.get("/profile/", secure=True).status_code == 200


@pytest.mark.parametrize("stop", ["shutdown", "stop"], ids=["sigterm", "sigkill"])
def test_a_session_survives_a_restart_of_a_redis_with_aof(own_redis, user, password, stop):
    """With appendonly + appendfsync always, a session outlives a restart, clean or a crash."""
    server = own_redis(AOF)
    client = Client(raise_request_exception=False)
    with sessions_at(server.url):
        assert submit_login(client, user, password).status_code == 302
        getattr(server, stop)()
        server.start()  # the same port and --dir: it replays its AOF

        response = client.get("/profile/", secure=True)
        assert response.status_code == 200
        assert user.username in response.text
        # The per-user index came back too: the session is listed.
        assert client.get("/accounts/sessions/", secure=True).status_code == 200
        assert client.post("/accounts/logout/", secure=True).status_code == 302
    assert session_keys(server.client()) == []


def test_a_login_while_redis_is_down_is_a_503_and_writes_nothing(own_redis, user, password):
    """
    A login while Redis is down answers 503 and sets no session cookie; Redis,
    once back (with everything it had persisted), holds no session; the same
    POST then logs in.
    """
    server = own_redis(AOF)
    client = Client(raise_request_exception=False)
    with sessions_at(server.url):
        server.shutdown()
        response = submit_login(client, user, password)
        assert_unavailable(response)
        assert COOKIE not in client.cookies
        user.refresh_from_db()
        assert user.last_login is None  # nor was a login recorded

        server.start()
        assert session_keys(server.client()) == []

        response = submit_login(client, user, password)
        assert response.status_code == 302
        assert response.cookies[COOKIE].value
        assert client.get("/profile/", secure=True).status_code == 200
    assert len(session_keys(server.client())) == 1
    assert index_entries(server.client(), user.pk)  # and its user's index


def timed(request):
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def test_a_silent_redis_makes_login_a_503_within_the_timeout(user, password):
    """A login POST against a Redis that never answers ends in the 503 page, in time."""
    client = Client(raise_request_exception=False)
    with silent_redis() as url, sessions_at(url):
        response, elapsed = timed(lambda: submit_login(client, user, password))

    assert_unavailable(response)
    assert elapsed < DEADLINE_SECONDS
    assert COOKIE not in client.cookies
    user.refresh_from_db()
    assert user.last_login is None


def test_a_silent_redis_makes_logout_a_503_within_the_timeout(user, password):
    """
    A logout POST against a Redis that never answers ends in the 503 page, in
    time; the session was not ended, so it still works once Redis answers.
    """
    client = Client(raise_request_exception=False)
    assert submit_login(client, user, password).status_code == 302
    with silent_redis() as url, sessions_at(url):
        response, elapsed = timed(lambda: client.post("/accounts/logout/", secure=True))

    assert_unavailable(response)
    assert elapsed < DEADLINE_SECONDS
    assert client.get("/profile/", secure=True).status_code == 200
