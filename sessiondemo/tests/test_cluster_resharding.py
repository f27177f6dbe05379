"""
Redis Cluster resharding while the site serves: MOVED, ASK and TRYAGAIN, and no visitor sees it.

Real processes: primaries on loopback, the site configured as production's
REDIS_CLUSTER switch makes it. Some tests hold one slot half-way through its
migration, in the steps ``redis-cli --cluster`` takes (testing/cluster.py),
and let an operator thread finish it once the engine has been told TRYAGAIN;
the last moves slots with ``redis-cli --cluster reshard``, adds a fourth
primary and rebalances, under a load of logged-in visitors from several
threads (testing/traffic.py). Nothing sleeps to let something happen: every
wait polls with a deadline.
"""

import asyncio
import inspect
import os
import threading
import time

import pytest
import redis.asyncio.cluster
import redis.cluster
from django.test import AsyncClient
from redis.cluster import ClusterPipeline, RedisCluster
from redis.crc import key_slot

from accounts.tests.factories import UserFactory
from sessiondemo.sessions import cluster as engine_cluster
from sessiondemo.sessions import scripts
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.connection import get_client
from sessiondemo.testing.cluster import RedisClusterServers, cluster_cli
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.traffic import COOKIE, Traffic, browser_with, visitor
from sessiondemo.testing.web import (
    assert_unavailable,
    browser,
    is_logged_in,
    log_in,
    make_renewal_due,
    redis_key,
    stored,
)
from sessiondemo.tests.test_cluster import production_cluster_options

pytestmark = pytest.mark.django_db

DEADLINE_SECONDS = 15.0
VISITORS = 24


def require_cli():
    if cluster_cli() is None:
        reason = "redis-cli is not installed; it creates the cluster."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster_servers(tmp_path_factory):
    """Three primaries, shared by the module's tests that hold one slot half-way."""
    require_cli()
    servers = RedisClusterServers(tmp_path_factory.mktemp("resharding")).start()
    yield servers
    servers.stop()


@pytest.fixture
def cluster(cluster_servers, monkeypatch):
    """The cluster, emptied, and the site's sessions on it for the test."""
    cluster_servers.flush()
    location, options = production_cluster_options(monkeypatch, cluster_servers)
    with sessions_at(location, options=options):
        yield cluster_servers


@pytest.fixture
def cluster_client(cluster):
    client = cluster.client(socket_timeout=1)
    yield client
    client.close()


def poll(probe, what, timeout=DEADLINE_SECONDS):
    """Call ``probe`` until it returns something truthy and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.005)
    return result


class Operator(threading.Thread):
    """
    Finish the migration of ``slot`` to ``target`` (moving what keys are left)
    once ``node`` has answered TRYAGAIN more often than redis-py tries a
    command (RedisClusterRequestTTL): the engine is then waiting beyond what
    redis-py alone would.
    """

    def __init__(self, cluster, slot, source, target, node):
        super().__init__()
        self.cluster, self.slot, self.source, self.target = cluster, slot, source, target
        self.node, self.seen = node, cluster.errors(node, "TRYAGAIN")
        self.failure = None

    def run(self):
        try:
            enough = self.seen + RedisCluster.RedisClusterRequestTTL
            poll(lambda: self.cluster.errors(self.node, "TRYAGAIN") > enough, "too few TRYAGAIN")
            self.cluster.migrate_keys(self.slot, self.source, self.target)
            self.cluster.finish_migration(self.slot, self.target)
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.failure = e

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.join(DEADLINE_SECONDS + 5)
        assert self.failure is None, self.failure


def half_migrated(cluster, session_id, *, keys_moved):
    """Start moving the slot of ``session_id`` to another primary; return (slot, source, target, TRYAGAIN's node)."""
    key = redis_key(session_id)
    slot, source = cluster.keyslot(key), cluster.node_of(key)
    target = next(node for node in cluster.primaries() if node is not source)
    cluster.begin_migration(slot, source, target)
    if keys_moved:
        cluster.migrate_keys(slot, source, target)
    # A script on the session's keys (the session, its new id, the move's
    # record) meets them split: on the source while it holds the session,
    # else on the target, which the source sends it to (ASK).
    return slot, source, target, target if keys_moved else source


@pytest.mark.parametrize("keys_moved", [False, True], ids=["session-on-the-source", "session-on-the-target"])
def test_a_renewal_on_a_migrating_slot_waits_for_the_migration(
    cluster, cluster_client, settings, user, password, keys_moved
):
    """
    A renewal (the MOVE script on three keys of one slot) meets the slot half
    migrated, is told TRYAGAIN, and waits until the operator finishes: the
    visitor gets 200 and a new id, on the slot's new node, and nothing else.
    """
    client = browser(raise_request_exception=False)
    session_id = log_in(client, user, password)
    make_renewal_due(cluster_client, settings, session_id)
    slot, source, target, refusing = half_migrated(cluster, session_id, keys_moved=keys_moved)

    with Operator(cluster, slot, source, target, refusing):
        response = client.get("/profile/", secure=True)

    assert response.status_code == 200
    renewed = response.cookies[COOKIE].value
    assert renewed != session_id
    assert cluster.node_of(redis_key(renewed)) is target
    assert stored(cluster_client, renewed).user_id == str(user.pk)
    # The old id lives out its grace period, leading to the new one.
    assert client.get("/profile/", secure=True).status_code == 200


def test_a_slot_left_half_migrated_is_a_503_after_the_wait_never_a_500(cluster, cluster_client, settings, user, password):
    """
    A migration that never finishes (redis-cli killed half-way): a renewal
    waits SLOT_MIGRATION_WAIT, then the visitor gets the 503 page, not a 500;
    once the operator clears the marks, the session works again.
    """
    client = browser(raise_request_exception=False)
    session_id = log_in(client, user, password)
    make_renewal_due(cluster_client, settings, session_id)
    slot, source, target, _ = half_migrated(cluster, session_id, keys_moved=False)

    started = time.monotonic()
    response = client.get("/profile/", secure=True)
    waited = time.monotonic() - started

    assert_unavailable(response)
    assert engine_cluster.SLOT_MIGRATION_WAIT <= waited < engine_cluster.SLOT_MIGRATION_WAIT + 1.0
    cluster.abandon_migration(slot, source, target)
    response = client.get("/profile/", secure=True)
    assert response.status_code == 200
    assert response.cookies[COOKIE].value != session_id  # renewed now


def test_a_script_sent_on_to_a_node_without_it_is_sent_again_whole(cluster, cluster_client, user, password):
    """
    A change to a session whose key has moved to a node that has never run
    the engine's scripts: the source answers ASK, the target NOSCRIPT to the
    EVALSHA, and the engine sends EVAL there, in the same request.
    """
    session_id = log_in(browser(), user, password)
    slot, source, target, _ = half_migrated(cluster, session_id, keys_moved=True)
    with target.client() as client:
        client.script_flush()
        asked = cluster.errors(source, "ASK")

    store = SessionStore(session_id)
    store["colour"] = "green"
    store.save()

    assert cluster.errors(source, "ASK") > asked
    with target.client() as client:
        assert client.script_exists(scripts.SHAS[scripts.SAVE]) == [True]
    cluster.finish_migration(slot, target)
    assert SessionStore(session_id).load()["colour"] == "green"


@pytest.mark.django_db(transaction=True)
def test_an_ask_to_a_primary_being_added_is_followed(cluster, cluster_client):
    """
    A primary just added serves no slot, so the site's cluster client has
    never heard of it (CLUSTER SLOTS does not name it); while the first slot
    moves there, the old owner answers ASK naming it. The engine follows, on
    redis-py's client and on redis.asyncio's (redis-py alone fails the
    request: redis/redis-py#4015).
    """
    sessions = []
    for _ in range(2):
        store = SessionStore()
        store["colour"] = "red"
        store.save()
        sessions.append(store.session_key)
    get_client().ping()  # the site's client learns the layout before the node joins
    newcomer = cluster.add_primary()
    moves = []
    for session_id in sessions:
        key = redis_key(session_id)
        slot, source = cluster.keyslot(key), cluster.node_of(key)
        cluster.begin_migration(slot, source, newcomer)
        cluster.migrate_keys(slot, source, newcomer)
        moves.append((slot, source))
    asked = sum(cluster.errors(source, "ASK") for _, source in moves)

    store = SessionStore(sessions[0])
    store["colour"] = "green"
    store.save()

    async def asave():
        store = SessionStore(sessions[1])
        await store.aset("colour", "blue")
        await store.asave()

    asyncio.run(asave())

    assert sum(cluster.errors(source, "ASK") for _, source in moves) > asked
    for slot, _ in moves:
        cluster.finish_migration(slot, newcomer)
    assert [SessionStore(s).load()["colour"] for s in sessions] == ["green", "blue"]
    assert {cluster.node_of(redis_key(s)).port for s in sessions} == {newcomer.port}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keys_moved", [False, True], ids=["session-on-the-source", "session-on-the-target"])
def test_the_async_path_waits_for_a_migrating_slot_too(cluster, cluster_client, settings, user, password, keys_moved):
    """The same renewal through the ASGI handler, on redis.asyncio's cluster client."""
    session_id = log_in(browser(), user, password)
    make_renewal_due(cluster_client, settings, session_id)
    slot, source, target, refusing = half_migrated(cluster, session_id, keys_moved=keys_moved)

    async def visit():
        client = AsyncClient()
        client.cookies[COOKIE] = session_id
        return await client.get("/profile/", secure=True)

    with Operator(cluster, slot, source, target, refusing):
        response = asyncio.run(visit())

    assert response.status_code == 200
    renewed = response.cookies[COOKIE].value
    assert cluster.node_of(redis_key(renewed)) is target
    assert stored(cluster_client, renewed).user_id == str(user.pk)


def test_the_redis_py_internals_the_cluster_client_leans_on_are_there(cluster):
    """
    sessions/cluster.py leans on redis-py 8.1 beyond its public API: the
    pipeline's policy resolver (scripts routed by their keys) and
    parent_execute_command (what its redirected commands go through: the
    client's, which waits out a migrating slot); get_node(node_name=...),
    which the ASK path calls; the asyncio nodes manager's connection_kwargs.
    If this fails after upgrading redis-py, re-read redis/cluster.py and
    redis/asyncio/cluster.py and fix sessions/cluster.py (the tests above
    show what breaks: a 500 during a resharding).
    """
    client = get_client()
    pipe = client.pipeline(transaction=False)
    assert isinstance(pipe, ClusterPipeline)
    assert pipe._policy_resolver is client._policy_resolver
    assert pipe.parent_execute_command == client.execute_command
    sync_retry = inspect.getsource(redis.cluster.PipelineStrategy._send_cluster_commands)
    assert "self._pipe.parent_execute_command(*c.args, **c.options)" in sync_retry
    for module in (redis.cluster, redis.asyncio.cluster):
        assert "self.get_node(node_name=redirect_addr)" in inspect.getsource(module.RedisCluster._execute_command)
    async_retry = inspect.getsource(redis.asyncio.cluster.PipelineStrategy._execute)
    assert "await client.execute_command(*cmd.args, **cmd.kwargs)" in async_retry

    async def connection_kwargs():
        twin = engine_cluster.async_cluster([(n.host, n.port) for n in client.get_nodes()], {})
        try:
            return twin.nodes_manager.connection_kwargs
        finally:
            await twin.aclose()

    assert isinstance(asyncio.run(connection_kwargs()), dict)


# -- Resharding and growth under traffic --------------------------------------------------

# How many slots the reshard moves, and the new primary's weight in the
# rebalance (the others' is 1): 1,000 slots, then about 500 to the new
# primary in make test, seconds under traffic; SESSIONDEMO_SCALE=1 (make
# test-scale) moves 4,000 and gives the new primary a full share (4,096),
# on a cluster whose primaries have a replica each.
SCALE = os.environ.get("SESSIONDEMO_SCALE", "") == "1"
MOVED_SLOTS = 4000 if SCALE else 1000
NEWCOMER_WEIGHT = 1 if SCALE else 0.1


@pytest.fixture
def growing_cluster(tmp_path, monkeypatch):
    """Three primaries of the test's own (it adds a fourth), and the site's sessions on them."""
    require_cli()
    servers = RedisClusterServers(tmp_path / "cluster", replicas=1 if SCALE else 0).start()
    try:
        location, options = production_cluster_options(monkeypatch, servers)
        with sessions_at(location, options=options):
            yield servers
    finally:
        servers.stop()


BALLAST_KEYS = 20_000


def ballast(client, key):
    """Store BALLAST_KEYS keys on the slot of ``key`` (the same hash tag)."""
    tag = key[key.index("{") : key.index("}") + 1]
    pipe = client.pipeline(transaction=False)
    for n in range(BALLAST_KEYS):
        pipe.set(f"ballast:{tag}:{n}", "x" * 100)
    pipe.execute()


def on_slots(session_id, ranges):
    slot = key_slot(redis_key(session_id).encode())
    return any(first <= slot <= last for first, last in ranges)


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("sessiondemo.testing.traffic")
def test_resharding_and_a_new_primary_under_traffic_lose_nothing(growing_cluster, settings, password):
    """
    While 4 threads (and a fifth through the ASGI handler, on redis.asyncio)
    read /profile/, write their own key into shared sessions, log visitors
    in and renew ids every second (the MOVE script, three keys of one slot): move 1,000 slots from one primary to another (redis-cli
    --cluster reshard), add a fourth primary and rebalance. Every answer is a
    200 (a 302 for a login), no session is lost and no write is.
    """
    cluster = growing_cluster
    settings.SESSION_REDIS_RENEW_AFTER = 1
    users = [UserFactory(password=password) for _ in range(VISITORS)]
    visitors = [visitor(user, password) for user in users]
    # Logins of accounts of their own, a few each: past SESSION_REDIS_MAX_PER_USER
    # a login would end the account's oldest session, a visitor's.
    newcomers = [UserFactory(password=password) for _ in range(60)]
    source, target = cluster.primaries()[:2]
    first, _ = cluster.slots_of(source)[0]
    moving = [(first, first + MOVED_SLOTS - 1)]
    shared = []
    for _ in range(200):  # a session lands on those slots 1 time in 8
        writer = visitor(UserFactory(password=password), password)
        if on_slots(writer.session_id, moving) or len(shared) < 2:
            shared.append(writer)
        if sum(on_slots(w.session_id, moving) for w in shared) >= 2:
            break
    assert sum(on_slots(w.session_id, moving) for w in shared) >= 2
    # Ballast on the shared sessions' slots makes each of their migrations
    # last long enough (MIGRATE, key by key) for requests to meet it half-way.
    with cluster.client(socket_timeout=5) as client:
        for writer in shared:
            if on_slots(writer.session_id, moving):
                ballast(client, redis_key(writer.session_id))
    redirections = {name: sum(cluster.errors(n, name) for n in cluster.primaries()) for name in ("MOVED", "ASK", "TRYAGAIN")}

    traffic = Traffic(
        visitors, shared=shared, users=newcomers, password=password,
        threads=4, async_threads=1, write_every=3, login_every=10, deadline=300,
    )  # fmt: skip
    with traffic:
        poll(lambda: len(traffic.answers) >= 80, "the traffic did not get going")
        began = time.monotonic()
        cluster.reshard(source, target, MOVED_SLOTS)
        resharded = time.monotonic()
        newcomer = cluster.add_primary()
        cluster.rebalance({newcomer: NEWCOMER_WEIGHT})
        rebalanced = time.monotonic()
        count = len(traffic.answers)
        poll(lambda: len(traffic.answers) >= count + 80, "the traffic stopped")

    during = [a for a in traffic.answers if began <= a.started <= rebalanced]
    seen = {name: sum(cluster.errors(n, name) for n in cluster.primaries()) - redirections[name] for name in redirections}
    figures = (
        f"reshard {resharded - began:.1f} s, add-node and rebalance {rebalanced - resharded:.1f} s; "
        f"{len(during)} requests during them, all {len(traffic.answers)}: views {traffic.statuses('view')}, "
        f"writes {traffic.statuses('write')}, logins {traffic.statuses('login')} (through ASGI: "
        f"{traffic.statuses(asgi=True)}); "
        f"slowest {max(a.at - a.started for a in traffic.answers):.2f} s; redirections {seen}"
    )
    print(figures)

    failures = [a.text for a in traffic.answers if a.status >= 500]
    assert not failures, failures[0]
    assert traffic.statuses("view") == {200: len([a for a in traffic.answers if a.kind == "view"])}, figures
    assert set(traffic.statuses("write")) == {200}, figures
    assert set(traffic.statuses("login")) == {302}, figures
    assert len(during) > 100, figures
    # The reshard met requests half-way through the slots it moved (the
    # ballast's): redirected (ASK) and, for a renewal's script, TRYAGAIN.
    assert seen["ASK"] > 0 and seen["MOVED"] > 0, figures
    ports = {node.port for node in cluster.primaries()}
    assert newcomer.port in ports and len(ports) == 4
    assert all(cluster.slots_of(node) for node in cluster.primaries())

    # No session lost: every visitor is still logged in, with whatever id it
    # was renewed to (a shared session's: as each thread's tab last saw it).
    assert len(traffic.async_visitors) == 3
    for session_id in traffic.current_ids():
        assert is_logged_in(browser_with(session_id))
    with cluster.client(socket_timeout=1) as client:
        for session_id in traffic.logins():
            assert client.exists(redis_key(session_id)) == 1
    # No update lost: each thread's last acknowledged write to each shared session is there.
    assert {thread for thread, _ in traffic.acknowledged} == set(range(5))
    for (thread, session_id), value in traffic.acknowledged.items():
        tab = traffic.tabs[thread, session_id]
        data = SessionStore(tab.cookies[COOKIE].value).load()
        assert data.get(f"t{thread}") == value, (thread, session_id, data, figures)
