"""
A Sentinel-managed primary killed under traffic: 503 only until the replica is promoted, then all works.

Real processes: a primary, its replica and three sentinels (quorum 2,
down-after 1 s), the site configured as production's REDIS_SENTINELS block
makes it (all three sentinels), and a bounded load of logged-in visitors from
several threads (testing/traffic.py). The primary is SIGKILLed; Django is
never restarted. Nothing sleeps to let something happen: every wait polls
with a deadline.
"""

import os
import runpy
import time
from pathlib import Path

import pytest

from accounts.tests.factories import UserFactory
from sessiondemo.settings import base as settings_module
from sessiondemo.testing.redis_server import RedisServer
from sessiondemo.testing.sentinel import (
    SERVICE,
    SentinelServer,
    sentinel_command,
    wait_until_replicated,
)
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.traffic import OUTAGE_PAGE, Traffic, browser_with, visitor
from sessiondemo.testing.web import (
    browser,
    is_logged_in,
    log_in,
    redis_key,
    stored_data,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("sessiondemo.testing.traffic")]

DEADLINE_SECONDS = 20.0
DOWN_AFTER_MS = 1000
SENTINELS, QUORUM = 3, 2
# What the issue allows: 503 only until the replica is promoted, within
# down-after-milliseconds plus 2 s of the kill. The window is Sentinel's
# (down-after, the quorum's agreement, a leader's election, the promotion,
# the sentinels naming the new primary) plus the site's catch-up once they do.
WINDOW_SECONDS = DOWN_AFTER_MS / 1000 + 2.0
CATCH_UP_SECONDS = 0.5
VISITORS = 16
QUICK_SYNC = ["--repl-diskless-sync-delay", "0"]


class Deployment:
    """A primary, its replica and three sentinels, all private processes on free loopback ports."""

    def __init__(self, directory):
        self.processes = []
        self.primary = self._started(RedisServer(directory / "primary", args=QUICK_SYNC))
        self.replica = self._started(
            RedisServer(directory / "replica", args=[*QUICK_SYNC, "--replicaof", "127.0.0.1", str(self.primary.port)])
        )
        wait_until_replicated(self.replica, timeout=DEADLINE_SECONDS)
        self.sentinels = [
            self._started(
                SentinelServer(
                    directory / f"sentinel-{n}", self.primary.port, down_after_ms=DOWN_AFTER_MS, quorum=QUORUM
                )
            )
            for n in range(SENTINELS)
        ]
        for sentinel in self.sentinels:
            sentinel.wait_for_primary(self.primary.port, timeout=DEADLINE_SECONDS)
            sentinel.wait_for_replicas([self.replica.port], timeout=DEADLINE_SECONDS)
            sentinel.wait_for_sentinels(SENTINELS - 1, timeout=DEADLINE_SECONDS)

    def _started(self, process):
        try:
            process.start()
        except BaseException:
            self.stop()
            raise
        self.processes.append(process)
        return process

    def stop(self):
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """The processes, and the site's sessions on them through the three sentinels for the test."""
    if sentinel_command() is None:
        reason = "Redis Sentinel is not installed (neither redis-sentinel nor redis-server)."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    processes = Deployment(tmp_path)
    try:
        monkeypatch.setenv("REDIS_URL", f"redis://{SERVICE}/0")
        monkeypatch.setenv("REDIS_SENTINELS", ",".join("{}:{}".format(*s.address) for s in processes.sentinels))
        monkeypatch.delenv("REDIS_CLUSTER", raising=False)
        base = Path(settings_module.__file__).with_name("base.py")
        sessions = runpy.run_path(str(base))["CACHES"]["sessions"]
        assert len(sessions["OPTIONS"]["SENTINELS"]) == SENTINELS
        with sessions_at(sessions["LOCATION"], options=sessions["OPTIONS"]):
            yield processes
    finally:
        processes.stop()


def poll(probe, what, timeout=DEADLINE_SECONDS):
    """Call ``probe`` until it returns something truthy and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.01)
    return result


def is_primary(server):
    """Return whether ``server`` answers that it is a primary (ROLE)."""
    with server.client(socket_timeout=1) as client:
        return client.execute_command("ROLE")[0] in (b"master", "master")


def test_a_killed_primary_means_503_only_until_the_sentinels_promote_its_replica(deployment, password):
    """
    While 4 threads read /profile/, write shared sessions and log visitors
    in, SIGKILL the primary. Requests answer 200, 302 or the site's 503 page,
    never a 500; 503s end within down-after-milliseconds plus 2 s of the kill,
    once the sentinels name the promoted replica, without restarting Django;
    then every session the replica held is logged in, new logins work, and no
    write acknowledged after the failover is lost.
    """
    primary, replica, sentinels = deployment.primary, deployment.replica, deployment.sentinels
    users = [UserFactory(password=password) for _ in range(VISITORS + 2)]
    visitors = [visitor(user, password) for user in users[:VISITORS]]
    shared = [visitor(user, password) for user in users[VISITORS:]]
    assert all(visitors + shared)
    # Everything so far is on the replica: those sessions must survive the kill.
    with primary.client(socket_timeout=3) as client:
        assert client.execute_command("WAIT", 1, 2000) == 1
    synced = [v.session_id for v in visitors + shared]

    traffic = Traffic(
        visitors, shared=shared, users=users[:VISITORS], password=password,
        threads=4, async_threads=1, write_every=3, login_every=7, deadline=DEADLINE_SECONDS,
    )  # fmt: skip
    with traffic:
        poll(lambda: len(traffic.answers) >= 80, "the traffic did not get going")
        killed_at = time.monotonic()
        primary.stop()
        promoted_at = poll(lambda: is_primary(replica) and time.monotonic(), "the replica was not promoted")
        named_at = poll(
            lambda: any(s.primary_address() == ("127.0.0.1", replica.port) for s in sentinels) and time.monotonic(),
            "no sentinel named the new primary",
        )
        poll(lambda: time.monotonic() > max(named_at, killed_at + WINDOW_SECONDS) + 0.5, "the clock stopped")

    answers = traffic.answers
    before = [a for a in answers if a.at < killed_at]
    unavailable = [a for a in answers if a.status == 503]
    window = max((a.at for a in unavailable), default=killed_at) - killed_at
    acknowledged = synced + traffic.logins(until=killed_at)
    with replica.client(socket_timeout=1) as client:
        survived = [s for s in acknowledged if client.exists(redis_key(s))]
    lost = set(acknowledged) - set(survived)
    figures = (
        f"kill -> replica promoted {promoted_at - killed_at:.2f} s, -> named by a sentinel "
        f"{named_at - killed_at:.2f} s, -> last 503 {window:.2f} s; views {traffic.statuses('view')}, "
        f"writes {traffic.statuses('write')}, logins {traffic.statuses('login')} (through ASGI: "
        f"{traffic.statuses(asgi=True)}); sessions acknowledged "
        f"before the kill: {len(acknowledged)} ({len(synced)} synced with WAIT), {len(survived)} survived"
    )
    print(figures)

    assert {a.status for a in before} <= {200, 302}, figures
    failures = [a for a in answers if a.status not in {200, 302, 503}]
    assert not failures, failures[0].text
    assert all(a.text == OUTAGE_PAGE for a in unavailable), unavailable[0].text
    assert unavailable, f"the kill did not land during the traffic: {figures}"
    assert window <= named_at - killed_at + CATCH_UP_SECONDS, figures
    if named_at - killed_at <= WINDOW_SECONDS - CATCH_UP_SECONDS:
        # Unless the sentinels themselves were late (a machine starved of CPU), which figures shows.
        assert window <= WINDOW_SECONDS, figures
    after = [a for a in answers if a.started > killed_at + window]
    assert len(after) >= 20, figures
    # Views answer 302 only for a session the kill took (not yet on the replica).
    assert {a.target for a in answers if a.kind == "view" and a.status == 302} <= lost, figures
    assert set(synced) <= set(survived), figures

    # Afterwards, with the same Django: old sessions, new logins, writes.
    for session_id in survived:
        assert is_logged_in(browser_with(session_id))
    newcomer = browser()
    new_id = log_in(newcomer, users[0], password)
    assert is_logged_in(newcomer)
    with replica.client(socket_timeout=1) as client:
        assert client.exists(redis_key(new_id)) == 1
        # A write acknowledged after the failover is there; one before it may be lost with the primary.
        recovered_at = killed_at + window
        for thread, session_id in traffic.acknowledged:
            writes = [a for a in answers if a.kind == "write" and a.target == session_id and a.thread == thread]
            since = max((a.value for a in writes if a.status == 200 and a.started > recovered_at), default=-1)
            written = stored_data(client, session_id).get(f"t{thread}", -1)
            assert traffic.tried[thread, session_id] >= written >= since, figures
