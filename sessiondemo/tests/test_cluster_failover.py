"""
A Redis Cluster primary killed under traffic: 503 only until its replica takes over, then all works.

Real processes: three primaries with a replica each (node timeout 1 s), the
site configured as production's REDIS_CLUSTER switch makes it, and a bounded
load of logged-in visitors from several threads (testing/traffic.py). The
primary is SIGKILLed; Django is never restarted. Nothing sleeps to let
something happen: every wait polls with a deadline.
"""

import os
import time

import pytest
from redis.crc import key_slot

from accounts.tests.factories import UserFactory
from sessiondemo.testing.cluster import (
    NODE_TIMEOUT_MS,
    RedisClusterServers,
    cluster_cli,
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
from sessiondemo.tests.test_cluster import production_cluster_options

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("sessiondemo.testing.traffic")]

DEADLINE_SECONDS = 20.0
VISITORS = 24
# What the issue allows: 503 for the dead primary's sessions only until its
# replica is promoted, within the node timeout plus 2 s. The window is Redis's
# (the node timeout, gossip, then 0.5 to 1 s before the replica asks for
# votes: 2.2 to 2.7 s here) plus the site's catch-up once the replica serves.
WINDOW_SECONDS = NODE_TIMEOUT_MS / 1000 + 2.0
CATCH_UP_SECONDS = 0.5


@pytest.fixture
def replicated_cluster(tmp_path, monkeypatch):
    """Three primaries and three replicas, and the site's sessions on them for the test."""
    if cluster_cli() is None:
        reason = "redis-cli is not installed; it creates the cluster."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    servers = RedisClusterServers(tmp_path / "cluster", replicas=1).start()
    try:
        location, options = production_cluster_options(monkeypatch, servers)
        with sessions_at(location, options=options):
            yield servers
    finally:
        servers.stop()


def poll(probe, what, timeout=DEADLINE_SECONDS):
    """Call ``probe`` until it returns something truthy and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.01)
    return result


def on_slots(session_id, ranges):
    """Return whether the session ``session_id`` lives on one of the slot ``ranges``."""
    slot = key_slot(redis_key(session_id).encode())
    return any(first <= slot <= last for first, last in ranges)


def sync_replicas(cluster):
    """Make sure every write so far has reached each primary's replica (WAIT)."""
    for primary in cluster.primaries():
        with primary.client(socket_timeout=3) as client:
            assert client.execute_command("WAIT", 1, 2000) == 1


def test_a_killed_primary_means_503_only_until_its_replica_takes_over(replicated_cluster, password):
    """
    While 4 threads read /profile/, write shared sessions and log visitors in,
    SIGKILL the primary of one visitor's session. Requests answer 200, 302 or
    the site's 503 page, never a 500; 503s end within the node timeout plus
    2 s of the kill, once the replica serves the slots, without restarting
    Django; then every session the replica held is logged in, new logins land
    on every primary, and no acknowledged write to a session on a surviving
    primary is lost.
    """
    cluster = replicated_cluster
    users = [UserFactory(password=password) for _ in range(VISITORS + 12)]
    visitors = [visitor(user, password) for user in users[:VISITORS]]
    assert all(visitors)
    victim = cluster.node_of(redis_key(visitors[0].session_id))
    replica = cluster.replica_of(victim)
    assert replica is not None
    victim_slots = cluster.slots_of(victim)
    shared = {}
    for user in users[VISITORS:]:
        writer = visitor(user, password)
        shared.setdefault(cluster.node_of(redis_key(writer.session_id)).port, writer)
    assert len(shared) == 3, "twelve sessions did not land on all three primaries"
    # Everything so far is on the replicas: those sessions must survive the kill.
    sync_replicas(cluster)
    synced = [v.session_id for v in visitors if on_slots(v.session_id, victim_slots)]
    assert synced, "no visitor's session is on the victim"

    traffic = Traffic(
        visitors, shared=shared.values(), users=users[:VISITORS], password=password,
        threads=4, async_threads=1, write_every=3, login_every=7, deadline=DEADLINE_SECONDS,
    )  # fmt: skip
    with traffic:
        poll(lambda: len(traffic.answers) >= 80, "the traffic did not get going")
        killed_at = time.monotonic()
        victim.stop()
        promoted_at = poll(lambda: cluster.is_primary(replica) and time.monotonic(), "no replica took over")
        # Traffic goes on until it has run well past the window.
        poll(lambda: time.monotonic() > killed_at + WINDOW_SECONDS + 0.5, "the clock stopped")

    answers = traffic.answers
    before = [a for a in answers if a.at < killed_at]
    after = [a for a in answers if a.started >= killed_at]
    unavailable = [a for a in answers if a.status == 503]
    window = max((a.at for a in unavailable), default=killed_at) - killed_at
    acknowledged = synced + [s for s in traffic.logins(until=killed_at) if on_slots(s, victim_slots)]
    with replica.client(socket_timeout=1) as client:
        survived = [s for s in acknowledged if client.exists(redis_key(s))]
    lost = set(acknowledged) - set(survived)
    # Sessions on the other primaries get 503 too while the cluster is down
    # (from the node timeout until the promotion: cluster-require-full-coverage).
    elsewhere = [a.at - killed_at for a in unavailable if a.target and not on_slots(a.target, victim_slots)]
    figures = (
        f"kill -> replica promoted {promoted_at - killed_at:.2f} s, kill -> last 503 {window:.2f} s "
        f"(on the other primaries' sessions: {len(elsewhere)} 503s"
        + (f", {min(elsewhere):.2f} s to {max(elsewhere):.2f} s" if elsewhere else "")
        + f"); views {traffic.statuses('view')}, writes "
        f"{traffic.statuses('write')}, logins {traffic.statuses('login')} (through ASGI: "
        f"{traffic.statuses(asgi=True)}); sessions on the killed "
        f"primary acknowledged before the kill: {len(acknowledged)} ({len(synced)} synced with WAIT), "
        f"{len(survived)} survived"
    )
    print(figures)

    assert {a.status for a in before} <= {200, 302}, figures
    failures = [a for a in answers if a.status not in {200, 302, 503}]
    assert not failures, failures[0].text
    assert all(a.text == OUTAGE_PAGE for a in unavailable), unavailable[0].text
    assert unavailable, f"the kill did not land during the traffic: {figures}"
    assert window <= promoted_at - killed_at + CATCH_UP_SECONDS, figures
    if promoted_at - killed_at <= WINDOW_SECONDS - CATCH_UP_SECONDS:
        # Unless Redis itself promoted late (a machine starved of CPU), which figures shows.
        assert window <= WINDOW_SECONDS, figures
    # Views answer 302 only for a session the kill took (not yet on the replica).
    assert {a.target for a in after if a.kind == "view" and a.status == 302} <= lost, figures
    assert set(synced) <= set(survived), figures
    assert len([a for a in after if a.started > killed_at + window]) >= 20, figures

    # Afterwards, with the same Django: old sessions that survived, new logins on every primary.
    for session_id in survived:
        assert is_logged_in(browser_with(session_id))
    primaries = {node.port for node in cluster.primaries()}
    assert replica.port in primaries and victim.port not in primaries
    landed = set()
    for user in users:
        landed.add(cluster.node_of(redis_key(log_in(browser(), user, password))).port)
        if landed == primaries:
            break
    assert landed == primaries

    # No acknowledged write is lost but those the kill took before they reached the replica.
    recovered_at = killed_at + window
    with cluster.client(socket_timeout=1) as client:
        for (thread, session_id), value in traffic.acknowledged.items():
            written = stored_data(client, session_id).get(f"t{thread}", -1)
            if on_slots(session_id, victim_slots):
                writes = [a for a in answers if a.kind == "write" and a.target == session_id and a.thread == thread]
                value = max((a.value for a in writes if a.status == 200 and a.started > recovered_at), default=-1)
            assert traffic.tried[thread, session_id] >= written >= value, figures
