"""
The engine on Redis Sentinel, with real processes: a primary, a replica
(``--replicaof``) and one sentinel monitoring them as ``mymaster``.

The site is configured exactly as production's REDIS_SENTINELS block makes it
(settings/base.py, read with REDIS_SENTINELS and REDIS_URL=redis://mymaster/0
set), and pointed at it for each test (sessions_at). Failovers are real: the
primary is SIGKILLed and the sentinel promotes the replica; Django is never
restarted. Nothing sleeps to let something happen: every wait polls with a
deadline.
"""

import asyncio
import os
import runpy
import threading
import time
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from accounts.tests.factories import UserFactory
from sessiondemo.sessions import scripts
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.settings import base as settings_module
from sessiondemo.testing.redis_server import RedisServer
from sessiondemo.testing.sentinel import (
    SERVICE,
    SentinelServer,
    sentinel_command,
    wait_until_replicated,
)
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.web import (
    assert_unavailable,
    async_round_as_expected,
    async_session_round,
    browser,
    is_logged_in,
    log_in,
    redis_key,
    stored,
    submit_login,
)

pytestmark = pytest.mark.django_db

ALLOWED = {200, 302, 503}
DEADLINE_SECONDS = 15.0
# A full resync at once instead of after Redis 7's default 5 s of waiting for
# more replicas to share a diskless transfer.
QUICK_SYNC = ["--repl-diskless-sync-delay", "0"]


def production_sentinel_options(monkeypatch, sentinel, scheme="redis"):
    """Return the sessions cache (LOCATION, OPTIONS) that settings/base.py builds for ``sentinel``."""
    monkeypatch.setenv("REDIS_URL", f"{scheme}://{SERVICE}/0")
    monkeypatch.setenv("REDIS_SENTINELS", "{}:{}".format(*sentinel.address))
    base = Path(settings_module.__file__).with_name("base.py")
    sessions = runpy.run_path(str(base))["CACHES"]["sessions"]
    return sessions["LOCATION"], sessions["OPTIONS"]


class Deployment:
    """A primary, its replica and a sentinel, all private processes on free loopback ports."""

    def __init__(self, directory, *, sentinel_password=None):
        self.primary = RedisServer(directory / "primary", args=QUICK_SYNC).start()
        self.replica = RedisServer(
            directory / "replica",
            args=[*QUICK_SYNC, "--replicaof", "127.0.0.1", str(self.primary.port)],
        ).start()
        wait_until_replicated(self.replica, timeout=DEADLINE_SECONDS)
        self.sentinel = SentinelServer(directory / "sentinel", self.primary.port, password=sentinel_password).start()
        self.sentinel.wait_for_primary(self.primary.port, timeout=DEADLINE_SECONDS)
        self.sentinel.wait_for_replicas([self.replica.port], timeout=DEADLINE_SECONDS)

    def stop(self):
        for process in (self.sentinel, self.replica, self.primary):
            process.stop()


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """The processes, and the site's sessions on them through the sentinel for the test."""
    if sentinel_command() is None:
        reason = "Redis Sentinel is not installed (neither redis-sentinel nor redis-server)."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    processes = Deployment(tmp_path)
    try:
        location, options = production_sentinel_options(monkeypatch, processes.sentinel)
        with sessions_at(location, options=options):
            yield processes
    finally:
        processes.stop()


def holds(server, session_id):
    """Return whether ``server`` holds the session ``session_id``."""
    with server.client(socket_timeout=1) as client:
        return client.exists(redis_key(session_id)) == 1


def view_profile(client):
    """GET /profile/ and return the status; a 503 must be the site's outage page."""
    response = client.get("/profile/", secure=True)
    if response.status_code == 503:
        assert_unavailable(response)
    return response.status_code


def poll(probe, what, timeout=DEADLINE_SECONDS):
    """Call ``probe`` until it returns something truthy and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.02)
    return result


def wait_for_replication(deployment):
    """Make sure everything written to the primary so far has reached the replica."""
    with deployment.primary.client(socket_timeout=3) as client:
        assert client.execute_command("WAIT", 1, 2000) == 1


def test_the_whole_flow_runs_through_the_sentinel_and_replicates(deployment, user, password):
    """
    Login, /profile/ and logout through the sentinel: the session hash is written
    to the primary the sentinel names, reaches the replica, and logout deletes
    it from both.
    """
    primary, replica = deployment.primary, deployment.replica
    client = browser()

    session_id = log_in(client, user, password)
    response = client.get("/profile/", secure=True)
    assert response.status_code == 200
    assert user.username in response.text

    assert holds(primary, session_id)
    poll(lambda: holds(replica, session_id), "the session did not reach the replica")
    with replica.client() as replica_client:
        assert stored(replica_client, session_id).user_id == str(user.pk)

    assert client.post("/accounts/logout/", secure=True).status_code == 302
    assert not holds(primary, session_id)
    poll(lambda: not holds(replica, session_id), "the logout did not reach the replica")
    assert not is_logged_in(client)


@pytest.mark.django_db(transaction=True)
def test_the_async_path_runs_through_the_sentinel(deployment, user, password):
    session_id, seen = asyncio.run(async_session_round(SessionStore, user, password))

    assert seen == async_round_as_expected(session_id)
    assert not holds(deployment.primary, session_id)


@pytest.mark.urls("sessiondemo.tests.urls")
def test_a_session_survives_a_failover_and_logins_work_after_it(deployment, user, password):
    """
    Kill the primary (SIGKILL) after the replica has the session: while the
    sentinel fails over, requests answer 503 at worst (never 500); once it
    serves the replica as the primary (names it and holds it up, see
    SentinelServer.serves), the same cookie is logged in at once and a new
    login works, all without restarting Django.
    """
    primary, replica, sentinel = deployment.primary, deployment.replica, deployment.sentinel
    client = browser(raise_request_exception=False)
    session_id = log_in(client, user, password)
    assert is_logged_in(client)
    wait_for_replication(deployment)
    assert holds(replica, session_id)
    # Scripts do not replicate (Redis 7 replicates their effects), so the new
    # primary answers the engine's first EVALSHA with NOSCRIPT.
    with replica.client() as replica_client:
        assert replica_client.script_exists(scripts.SHAS[scripts.SAVE]) == [False]

    primary.stop()
    during = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not sentinel.serves(replica.port):
        assert time.monotonic() < deadline, f"no failover in {DEADLINE_SECONDS} s: {during}"
        during.append(view_profile(client))
        time.sleep(0.02)
    assert set(during) <= ALLOWED, during
    assert 503 in during  # the kill did land while the test watched

    response = client.get("/profile/", secure=True)
    assert response.status_code == 200
    assert user.username in response.text
    assert client.get("/accounts/sessions/", secure=True).status_code == 200

    newcomer = browser()
    new_id = log_in(newcomer, user, password)
    # A login runs no script; a change to a session does.
    assert newcomer.get("/test/remember/blue/", secure=True).status_code == 200
    with replica.client() as replica_client:  # EVAL after NOSCRIPT cached the script
        assert replica_client.script_exists(scripts.SHAS[scripts.SAVE]) == [True]
    assert is_logged_in(newcomer)
    assert holds(replica, new_id)  # written to the new primary
    assert newcomer.post("/accounts/logout/", secure=True).status_code == 302
    assert not holds(replica, new_id)
    assert holds(replica, session_id)


def test_a_failover_under_traffic_is_never_a_500(deployment, user, password):
    """
    Traffic keeps flowing while another thread kills the primary wherever a
    request happens to be: page views of a logged-in visitor and fresh logins
    of another account answer only 200, 302 or 503 across the failover, and
    after it the visitor is still logged in and logins work.
    """
    primary, replica, sentinel = deployment.primary, deployment.replica, deployment.sentinel
    other = UserFactory(password=password)
    visitor = browser(raise_request_exception=False)
    session_id = log_in(visitor, user, password)
    wait_for_replication(deployment)
    assert holds(replica, session_id)

    kill, failed_over = threading.Event(), threading.Event()
    failure = []

    def operator():
        try:
            if kill.wait(DEADLINE_SECONDS):
                primary.stop()
                sentinel.wait_for_failover(primary.port, timeout=DEADLINE_SECONDS)
                failed_over.set()
        except (TimeoutError, RedisError) as e:  # reported by the test, not lost here
            failure.append(e)

    before, after = [], []  # (request, status) before and after the sentinel switched
    thread = threading.Thread(target=operator)
    thread.start()
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        for i in range(2000):
            if i == 10:
                kill.set()
            if failure or time.monotonic() > deadline or len(after) >= 20:
                break
            done = failed_over.is_set()
            if i % 4 == 3:
                login = submit_login(browser(raise_request_exception=False), other, password)
                if login.status_code == 503:
                    assert_unavailable(login)
                result = ("login", login.status_code)
            else:
                result = ("view", view_profile(visitor))
            (after if done else before).append(result)
            time.sleep(0.005)
    finally:
        kill.set()
        thread.join(DEADLINE_SECONDS + 5)

    assert not failure, failure
    assert failed_over.is_set() and len(after) >= 20, (before, after)
    assert {status for _, status in before} <= ALLOWED, before
    assert all(status == {"view": 200, "login": 302}[kind] for kind, status in before[:10]), before
    assert ("view", 503) in before  # the kill did land during the traffic
    # Once the sentinel serves the new primary, everything works again at once.
    assert all(status == {"view": 200, "login": 302}[kind] for kind, status in after), after
    assert sentinel.primary_address() == ("127.0.0.1", replica.port)
    assert is_logged_in(visitor)


def test_sentinels_that_ask_for_a_password_get_it(tmp_path, monkeypatch, user, password):
    """REDIS_SENTINEL_PASSWORD reaches the sentinels (SENTINEL_KWARGS); without it they refuse, a 503."""
    if sentinel_command() is None:
        pytest.skip("Redis Sentinel is not installed.")
    processes = Deployment(tmp_path, sentinel_password="sentinel-" + "s" * 20)
    try:
        with processes.sentinel.client(password=None, socket_timeout=1) as stranger:
            with pytest.raises(RedisError, match="(?i)auth"):
                stranger.sentinel_masters()
        monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", processes.sentinel.password)
        location, options = production_sentinel_options(monkeypatch, processes.sentinel)
        assert options["SENTINEL_KWARGS"] == {"password": processes.sentinel.password}
        with sessions_at(location, options=options):
            client = browser()
            session_id = log_in(client, user, password)
            assert is_logged_in(client)
            assert holds(processes.primary, session_id)

        monkeypatch.delenv("REDIS_SENTINEL_PASSWORD")
        location, options = production_sentinel_options(monkeypatch, processes.sentinel)
        with sessions_at(location, options=options):
            assert_unavailable(submit_login(browser(raise_request_exception=False), user, password))
    finally:
        processes.stop()


def test_tls_to_the_primary_the_sentinels_name(tmp_path, monkeypatch, user, password):
    """A rediss:// REDIS_URL with REDIS_SENTINELS: TLS to the primary and its replica, which speak nothing else."""
    if sentinel_command() is None:
        pytest.skip("Redis Sentinel is not installed.")
    import trustme
    from redis.sentinel import SentinelManagedSSLConnection

    from sessiondemo.tests.test_redis_security import write_tls_files

    tls = write_tls_files(trustme.CA(), tmp_path / "tls")
    args = [*QUICK_SYNC, "--tls-replication", "yes"]
    primary = RedisServer(tmp_path / "primary", tls=tls, args=args).start()
    replica = RedisServer(
        tmp_path / "replica", tls=tls, args=[*args, "--replicaof", "127.0.0.1", str(primary.port)]
    ).start()
    sentinel = None
    try:
        wait_until_replicated(replica, timeout=DEADLINE_SECONDS)
        sentinel = SentinelServer(tmp_path / "sentinel", primary.port, tls=tls).start()
        sentinel.wait_for_primary(primary.port, timeout=DEADLINE_SECONDS)
        location, options = production_sentinel_options(monkeypatch, sentinel, scheme="rediss")
        assert options["CONNECTION_POOL_KWARGS"]["connection_class"] is SentinelManagedSSLConnection
        ca = {"ssl_ca_certs": str(tls.ca), "ssl_cert_reqs": "required"}
        with sessions_at(location, options=options, pool_kwargs=ca):
            client = browser()
            session_id = log_in(client, user, password)
            assert is_logged_in(client)
            assert holds(primary, session_id)
            assert client.post("/accounts/logout/", secure=True).status_code == 302
            assert not holds(primary, session_id)

            async def asyncio_round():
                store = SessionStore()
                store["colour"] = "green"
                await store.acreate()
                return store.session_key, await SessionStore(store.session_key).aget("colour")

            # The asyncio client through the sentinel, over TLS too.
            session_id, colour = asyncio.run(asyncio_round())
            assert colour == "green"
            assert holds(primary, session_id)
    finally:
        for process in (sentinel, replica, primary):
            if process is not None:
                process.stop()
