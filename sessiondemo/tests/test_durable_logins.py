"""
Durable logins (SESSION_REDIS_MIN_REPLICAS): a login and every id change wait,
in their own round trip, for that many replicas to hold them, or answer 503.

Real processes: a primary and its replica (``--replicaof``), and for the
failover a sentinel; a replica is made slow by SIGSTOP, never by a mock.
"""

import contextlib
import os
import runpy
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.tests.factories import UserFactory
from sessiondemo import checks
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
    NEW_PASSWORD,
    assert_unavailable,
    browser,
    change_password,
    is_logged_in,
    log_in,
    redis_key,
    session_keys,
    submit_login,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
DEADLINE_SECONDS = 15.0
# How long a login waits for the replica: long where it must answer (a busy
# machine may not run it for a while), short where it is frozen on purpose.
PATIENT_MS, IMPATIENT_MS = 5000, 300
# Past PATIENT_MS, which checks.check_replica_wait() asks for.
SOCKET_TIMEOUT = {"SOCKET_TIMEOUT": 10.0}
QUICK_SYNC = ["--repl-diskless-sync-delay", "0"]


class Pair:
    """A primary and its replica, private processes on free loopback ports."""

    def __init__(self, directory):
        self.primary = RedisServer(directory / "primary", args=QUICK_SYNC).start()
        self.replica = RedisServer(
            directory / "replica", args=[*QUICK_SYNC, "--replicaof", "127.0.0.1", str(self.primary.port)]
        ).start()
        wait_until_replicated(self.replica, timeout=DEADLINE_SECONDS)
        with self.primary.client(socket_timeout=3) as primary:
            # Online in the primary's eyes, and answering WAIT.
            deadline = time.monotonic() + DEADLINE_SECONDS
            while primary.execute_command("WAIT", 1, 1000) != 1:
                assert time.monotonic() < deadline, "the replica never acknowledged a write"

    def stop(self):
        for server in (self.replica, self.primary):
            server.stop()


@pytest.fixture
def pair(tmp_path, settings):
    settings.SESSION_REDIS_MIN_REPLICAS = 1
    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = PATIENT_MS
    servers = Pair(tmp_path)
    try:
        with sessions_at(servers.primary.url, options=SOCKET_TIMEOUT):
            yield servers
    finally:
        servers.stop()


def holds(server, session_id):
    with server.client(socket_timeout=1) as client:
        return client.exists(redis_key(session_id)) == 1


@contextlib.contextmanager
def stalled(server, settings):
    """Freeze ``server`` (SIGSTOP) for the block: it acknowledges nothing meanwhile, and logins wait briefly."""
    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = IMPATIENT_MS
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = PATIENT_MS


def test_a_login_returns_once_the_replica_holds_the_session(pair, user, password, round_trips):
    client = browser()
    with round_trips() as log:
        session_id = log_in(client, user, password)

    # No polling: the login's answer came after the replica acknowledged it.
    assert holds(pair.replica, session_id)
    assert len(log) <= 3
    assert any("WAIT" in trip for trip in log.trips)


def test_a_login_the_replica_did_not_acknowledge_answers_503_and_leaves_no_session(pair, user, password, settings):
    client = browser(raise_request_exception=False)

    with stalled(pair.replica, settings):
        response = submit_login(client, user, password)

    assert_unavailable(response)
    assert COOKIE not in response.cookies or not response.cookies[COOKIE].value
    with pair.primary.client() as primary:
        assert session_keys(primary) == []
    assert not is_logged_in(client)
    # Once the replica answers again, logins work, with no restart.
    log_in(client, user, password)
    assert is_logged_in(client)


def test_an_id_change_waits_for_the_replica_too(pair, user, password, settings):
    client = browser(raise_request_exception=False)
    old_id = log_in(client, user, password)

    with stalled(pair.replica, settings):
        response = change_password(client, password, NEW_PASSWORD)

    assert_unavailable(response)
    assert not holds(pair.primary, old_id)  # the move left it, as a password change must
    response = change_password(client, password, NEW_PASSWORD)
    assert response.status_code == 302  # it failed closed: not logged in any more


def test_without_the_setting_a_stalled_replica_costs_a_login_nothing(pair, user, password, settings):
    settings.SESSION_REDIS_MIN_REPLICAS = 0
    client = browser()

    with stalled(pair.replica, settings):
        started = time.monotonic()
        log_in(client, user, password)
        elapsed = time.monotonic() - started

    assert is_logged_in(client)
    assert elapsed < 5  # no WAIT: nothing blocked on the frozen replica (a bound, not a benchmark)


@pytest.fixture
def failover(tmp_path, settings, monkeypatch):
    """A primary, its replica and a sentinel, the site's sessions on them through the sentinel."""
    if sentinel_command() is None:
        reason = "Redis Sentinel is not installed (neither redis-sentinel nor redis-server)."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    settings.SESSION_REDIS_MIN_REPLICAS = 1
    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = PATIENT_MS
    servers = Pair(tmp_path)
    sentinel = SentinelServer(tmp_path / "sentinel", servers.primary.port).start()
    try:
        sentinel.wait_for_primary(servers.primary.port, timeout=DEADLINE_SECONDS)
        sentinel.wait_for_replicas([servers.replica.port], timeout=DEADLINE_SECONDS)
        # The sessions cache as settings/base.py builds it for REDIS_SENTINELS.
        monkeypatch.setenv("REDIS_URL", f"redis://{SERVICE}/0")
        monkeypatch.setenv("REDIS_SENTINELS", "{}:{}".format(*sentinel.address))
        cache = runpy.run_path(str(Path(settings_module.__file__).with_name("base.py")))["CACHES"]["sessions"]
        with sessions_at(cache["LOCATION"], options={**cache["OPTIONS"], **SOCKET_TIMEOUT}):
            yield servers, sentinel
    finally:
        sentinel.stop()
        servers.stop()


def test_every_acknowledged_login_survives_a_primary_kill(failover, password, settings):
    """
    Logins before and while the replica lags (frozen), then the primary dies and
    the sentinel promotes the replica: the logins made while it lagged answered
    503, and every login the site acknowledged survives.
    """
    servers, sentinel = failover
    acknowledged = []

    def log_in_new_user():
        client = Client(raise_request_exception=False)
        if submit_login(client, UserFactory(password=password), password).status_code == 302:
            acknowledged.append(client)

    for _ in range(3):
        log_in_new_user()
    with stalled(servers.replica, settings):
        for _ in range(3):
            log_in_new_user()
        servers.primary.stop()
    sentinel.wait_for_failover(servers.primary.port, timeout=DEADLINE_SECONDS)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not sentinel.serves(servers.replica.port):
        assert time.monotonic() < deadline, "the sentinel did not promote the replica"
        time.sleep(0.02)

    assert len(acknowledged) == 3  # those made while the replica lagged answered 503
    survived = [client for client in acknowledged if is_logged_in(client)]
    assert len(survived) == len(acknowledged), f"{len(survived)} of {len(acknowledged)} survived"


def test_a_replica_wait_as_long_as_the_socket_timeout_is_a_configuration_error(settings):
    settings.SESSION_REDIS_MIN_REPLICAS = 1
    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = 1000

    assert [message.id for message in checks.check_replica_wait(None)] == ["sessiondemo.E001"]
    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = 800
    assert checks.check_replica_wait(None) == []


@pytest.fixture
def cluster_with_replicas(tmp_path, settings, monkeypatch):
    """3 primaries with a replica each, the site's sessions on them, logins waiting for a replica."""
    from sessiondemo.testing.cluster import RedisClusterServers, cluster_cli
    from sessiondemo.tests.test_cluster import production_cluster_options

    if cluster_cli() is None:
        pytest.skip("redis-cli is not installed; it creates the cluster.")
    settings.SESSION_REDIS_MIN_REPLICAS = 1
    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = PATIENT_MS
    servers = RedisClusterServers(tmp_path, replicas=1).start()
    try:
        location, options = production_cluster_options(monkeypatch, servers)
        with sessions_at(location, options={**options, **SOCKET_TIMEOUT}):
            yield servers
    finally:
        servers.stop()


def test_on_a_cluster_a_login_waits_for_the_replica_of_its_own_node(cluster_with_replicas, user, password, settings):
    # Were WAIT asked on another connection than the write's, it would find the
    # replicas at that connection's offset at once, frozen or not.
    servers = cluster_with_replicas
    replicas = [servers.replica_of(primary) for primary in servers.primaries()]
    assert all(replicas)
    client = browser(raise_request_exception=False)

    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = IMPATIENT_MS
    frozen = contextlib.ExitStack()
    with frozen:
        for replica in replicas:
            os.kill(replica.process.pid, signal.SIGSTOP)
            frozen.callback(os.kill, replica.process.pid, signal.SIGCONT)
        assert_unavailable(submit_login(client, user, password))
    settings.SESSION_REDIS_REPLICA_TIMEOUT_MS = PATIENT_MS

    session_id = log_in(client, user, password)
    assert is_logged_in(client)
    node = servers.node_of(redis_key(session_id))
    with servers.replica_of(node).client(socket_timeout=1) as replica:
        replica.execute_command("READONLY")  # a cluster replica answers reads only when asked so
        assert replica.exists(redis_key(session_id)) == 1
