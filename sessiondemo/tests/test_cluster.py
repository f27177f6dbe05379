"""
The engine on Redis Cluster, with real processes: three primaries, no replicas.

The site is configured exactly as production's REDIS_CLUSTER switch makes it
(settings/base.py, read with REDIS_CLUSTER=true and REDIS_URL naming the
nodes), plus the suite's counting connection, and pointed at it for each test
(sessions_at). Nothing sleeps to let something happen: every wait polls with
a deadline.
"""

import asyncio
import os
import runpy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.tests.factories import UserFactory
from sessiondemo import checks
from sessiondemo.sessions import scripts
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import USERS_PER_BUCKET, session_name, user_index_key
from sessiondemo.settings import base as settings_module
from sessiondemo.testing.cluster import RedisClusterServers, cluster_cli
from sessiondemo.testing.probes import CountingConnection
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.web import (
    NEW_PASSWORD,
    assert_unavailable,
    async_round_as_expected,
    async_session_round,
    browser,
    change_password,
    file_long_ago,
    handle_of,
    index_entries,
    is_logged_in,
    log_in,
    redis_key,
    stored,
    submit_login,
)

pytestmark = pytest.mark.django_db

DEADLINE_SECONDS = 15.0
USERS = 10


def production_cluster_options(monkeypatch, servers):
    """Return the sessions cache (LOCATION, OPTIONS) that settings/base.py builds for ``servers``."""
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("REDIS_URL", servers.location)
    monkeypatch.delenv("REDIS_SENTINELS", raising=False)
    base = Path(settings_module.__file__).with_name("base.py")
    sessions = runpy.run_path(str(base))["CACHES"]["sessions"]
    return sessions["LOCATION"], sessions["OPTIONS"]


@pytest.fixture(scope="module")
def cluster_servers(tmp_path_factory):
    """The cluster's processes, shared by the module's tests."""
    if cluster_cli() is None:
        reason = "redis-cli is not installed; it creates the cluster."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    servers = RedisClusterServers(tmp_path_factory.mktemp("cluster")).start()
    yield servers
    servers.stop()


@pytest.fixture
def cluster(cluster_servers, monkeypatch):
    """The cluster, emptied and whole, and the site's sessions on it for the test."""
    stopped = [node for node in cluster_servers.nodes if node.process is None]
    for node in stopped:  # a test stopped it: it rejoins from its nodes.conf, empty
        node.start()
    if stopped:
        cluster_servers.wait_until_ok(timeout=DEADLINE_SECONDS)
    cluster_servers.flush()
    location, options = production_cluster_options(monkeypatch, cluster_servers)
    assert options["CLIENT_CLASS"] == "sessiondemo.sessions.cluster.ClusterClient"
    with sessions_at(
        location, options=options, pool_kwargs={"connection_class": CountingConnection}
    ):
        yield cluster_servers


@pytest.fixture
def cluster_client(cluster):
    """A RedisCluster client of the test's own, for looking at what the site stored."""
    client = cluster.client(socket_timeout=1)
    yield client
    client.close()


def run(name, *args, **options):
    out = StringIO()
    call_command(name, *args, stdout=out, **options)
    return out.getvalue()


def ports_of(cluster, keys):
    """Return the ports of the nodes that hold ``keys``."""
    return {cluster.node_of(key).port for key in keys}


def node_keys(cluster, pattern):
    """Return every key matching ``pattern`` on every node, asking each node itself."""
    keys = []
    for node in cluster.nodes:
        with node.client(socket_timeout=1) as client:
            keys += client.scan_iter(match=pattern)
    return keys


def test_the_whole_flow_runs_on_the_cluster(cluster, cluster_client, user, password):
    """
    Login, /profile/, "Your sessions", ending the other sessions, a password
    change and logout, with the session hashes and the user index wherever
    their slots put them.
    """
    here, there = browser(), browser()
    here_id = log_in(here, user, password)
    response = here.get("/profile/", secure=True)
    assert response.status_code == 200
    assert user.username in response.text
    assert stored(cluster_client, here_id).user_id == str(user.pk)
    assert list(index_entries(cluster_client, user.pk)) == [session_name(here_id)]

    there_id = log_in(there, user, password)
    listing = here.get("/accounts/sessions/", secure=True)
    assert listing.status_code == 200
    rows = listing.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")[1:]
    assert len(rows) == 2
    assert f"/accounts/sessions/{handle_of(there_id)}/end/" in listing.text

    assert here.post("/accounts/sessions/others/end/", secure=True).status_code == 302
    assert not is_logged_in(there)
    assert cluster_client.exists(redis_key(there_id)) == 0

    log_in(there, user, password)
    response = change_password(here, password, NEW_PASSWORD)
    assert response.status_code == 302
    assert not is_logged_in(there)
    assert is_logged_in(here)
    new_id = response.cookies["__Host-sessionid"].value
    assert cluster_client.exists(redis_key(here_id)) == 0
    assert cluster_client.exists(redis_key(new_id)) == 1

    assert here.post("/accounts/logout/", secure=True).status_code == 302
    assert not is_logged_in(here)
    assert cluster_client.exists(redis_key(new_id)) == 0
    # On a cluster the entry goes once a reader sees the session gone (index.py).
    assert SessionStore.user_sessions(user.pk) == []


@pytest.mark.django_db(transaction=True)
def test_the_async_path_runs_on_the_cluster(cluster, cluster_client, user, password):
    session_id, seen = asyncio.run(async_session_round(SessionStore, user, password))

    assert seen == async_round_as_expected(session_id)
    assert cluster_client.exists(redis_key(session_id)) == 0


def test_sessions_and_indexes_spread_over_the_nodes(cluster, cluster_client, password):
    """Ten accounts' sessions and indexes land on more than one node, and all work."""
    # Ids far enough apart that their indexes are in different buckets.
    users = [UserFactory(password=password, pk=10_000 + n * USERS_PER_BUCKET) for n in range(USERS)]
    clients = [browser() for _ in users]
    ids = [log_in(client, user, password) for client, user in zip(clients, users)]

    assert len(ports_of(cluster, [redis_key(i) for i in ids])) > 1
    assert len(ports_of(cluster, [user_index_key(u.pk) for u in users])) > 1
    assert all(is_logged_in(client) for client in clients)
    for user, session_id in zip(users, ids):
        assert session_name(session_id) in index_entries(cluster_client, user.pk)


def test_clearsessions_prunes_the_indexes_on_every_node(cluster, cluster_client, password):
    users = [UserFactory(password=password, pk=10_000 + n * USERS_PER_BUCKET) for n in range(USERS)]
    ended, live = [], []
    for user in users:
        ended.append(log_in(browser(), user, password))
        live.append(log_in(browser(), user, password))
    assert len(ports_of(cluster, [user_index_key(u.pk) for u in users])) > 1
    for user, session_id in zip(users, ended):
        cluster_client.delete(redis_key(session_id))
        file_long_ago(cluster_client, user)

    first = run("clearsessions", verbosity=1)
    second = run("clearsessions", verbosity=1)

    assert first == (
        f"clearsessions: scanned {USERS} user index(es), pruned {USERS} entr(y/ies) of ended "
        "sessions, removed 0 empty index(es).\n"
    )
    assert second == (
        f"clearsessions: scanned {USERS} user index(es), pruned 0 entr(y/ies) of ended "
        "sessions, removed 0 empty index(es).\n"
    )
    for user, session_id in zip(users, live):
        index = list(index_entries(cluster_client, user.pk))
        assert index == [session_name(session_id)]


def test_aclear_expired_prunes_the_indexes_on_every_node_on_the_asyncio_client(cluster, cluster_client, password):
    users = [UserFactory(password=password, pk=20_000 + n * USERS_PER_BUCKET) for n in range(USERS)]
    live = []
    for user in users:
        ended = log_in(browser(), user, password)
        live.append(log_in(browser(), user, password))
        cluster_client.delete(redis_key(ended))
        file_long_ago(cluster_client, user)

    report = asyncio.run(SessionStore.aclear_expired())

    assert (report.indexes_scanned, report.entries_pruned) == (USERS, USERS)
    for user, session_id in zip(users, live):
        assert list(index_entries(cluster_client, user.pk)) == [session_name(session_id)]


def test_endsessions_all_ends_the_sessions_on_every_node(cluster, cluster_client, password):
    # Ids far enough apart that their indexes are in different buckets.
    users = [UserFactory(password=password, pk=10_000 + n * USERS_PER_BUCKET) for n in range(USERS)]
    clients = [browser() for _ in users]
    ids = [log_in(client, user, password) for client, user in zip(clients, users)]
    assert len(ports_of(cluster, [redis_key(i) for i in ids])) > 1
    cluster_client.set("unrelated", "value")

    assert run("endsessions", "--all") == f"Ended {USERS} sessions.\n"

    assert not any(is_logged_in(client) for client in clients)
    assert node_keys(cluster, "sd:s:*") == []
    assert node_keys(cluster, "sd:u:*") == []
    assert cluster_client.get("unrelated") == b"value"


def test_concurrent_saves_of_different_keys_lose_no_update(cluster_client):
    """8 threads, 20 rounds, each saving its own key of one session: every write lands."""
    threads, rounds = 8, 20
    session = SessionStore()
    session["shared"] = True
    session.save()
    session_key = session.session_key
    assert cluster_client.exists(redis_key(session_key)) == 1
    barrier = threading.Barrier(threads, timeout=DEADLINE_SECONDS)

    def worker(i):
        for round_number in range(rounds):
            barrier.wait()
            store = SessionStore(session_key)
            store.keys()
            barrier.wait()
            store[f"t{i}"] = round_number
            store.save()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(worker, i) for i in range(threads)]:
            future.result()

    expected = {"shared": True} | {f"t{i}": rounds - 1 for i in range(threads)}
    assert SessionStore(session_key).load() == expected


@pytest.fixture
def warm(cluster):
    """Every primary holds the engine's scripts, as on a cluster that has served a while."""
    for node in cluster.nodes:
        with node.client(socket_timeout=1) as client:
            for script in scripts.SHAS:
                client.script_load(script)


@pytest.mark.urls("sessiondemo.tests.urls")
def test_round_trips_on_the_cluster(warm, cluster, user, password, round_trips):
    """
    A read and a change cost what they cost on one Redis. A pipeline costs one
    request per node its keys live on, all sent before any reply is read: a
    login's throttle reservation (two keys) touches one or two, its save with
    the reservations given back (four keys) one to three; a logout's delete
    one or two.
    """
    client = browser()
    log_in(client, user, password)  # the site's client learns the cluster's layout

    with round_trips() as login:
        assert submit_login(browser(), user, password).status_code == 302
    with round_trips() as read:
        assert client.get("/profile/", secure=True).status_code == 200
    with round_trips() as change:
        assert client.get("/test/remember/blue/", secure=True).status_code == 200
    with round_trips() as logout:
        assert client.post("/accounts/logout/", secure=True).status_code == 302

    assert read.trips == [["GETEX", "PEXPIRETIME"]]
    assert change.trips == [["GETEX", "PEXPIRETIME"], ["EVALSHA"]]
    assert 2 <= len(login) <= 5, login.trips
    assert 2 <= len(logout) <= 3, logout.trips
    # No script: the throttle's counts, the session, its index entry and the
    # list of index buckets (on another node) that clearsessions walks.
    assert set(login.commands) == {"INCR", "EXPIRE", "TTL", "SET", "HSET", "HINCRBY", "SADD", "PEXPIRE", "DECR"}, login.trips
    assert set(logout.commands) <= {"GETEX", "PEXPIRETIME", "GETDEL", "GET", "DEL"}, logout.trips


def test_the_deploy_checks_ask_every_primary(cluster):
    """check --deploy's eviction check reads the policy of each primary, not just one."""
    assert checks.check_eviction_policy(None) == []
    with cluster.nodes[2].client() as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        messages = checks.check_eviction_policy(None)
    finally:
        with cluster.nodes[2].client() as client:
            client.config_set("maxmemory-policy", "noeviction")
    assert [m.id for m in messages] == ["sessiondemo.W009"]
    assert "allkeys-lru" in messages[0].msg


def view_profile(client):
    """GET /profile/ and return the status; a 503 must be the site's outage page."""
    response = client.get("/profile/", secure=True)
    if response.status_code == 503:
        assert_unavailable(response)
    return response.status_code


def test_a_stopped_primary_is_a_503_never_a_500(cluster, password):
    """
    SIGKILL the primary that holds one visitor's session: that visitor gets 503
    at once; visitors whose sessions live elsewhere keep getting 200 until the
    other nodes mark the cluster down (--cluster-node-timeout), then 503 too,
    like logins. Back, the node is empty (no persistence, no replica): its
    visitors are sent to the login page, the others are still logged in. With
    every node down, the site answers 503 as well.
    """
    users = [UserFactory(password=password) for _ in range(USERS)]
    clients = [browser(raise_request_exception=False) for _ in users]
    ids = [log_in(client, user, password) for client, user in zip(clients, users)]
    victim = cluster.node_of(redis_key(ids[0]))
    placed = [(client, cluster.node_of(redis_key(i)) is victim) for client, i in zip(clients, ids)]
    on_victim = next(client for client, there in placed if there)
    elsewhere = next((client for client, there in placed if not there), None)
    assert elsewhere is not None, "ten sessions all landed on one node"

    victim.stop()
    during = []
    live = next(node for node in cluster.nodes if node is not victim)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while cluster.cluster_state(live) != "fail":
        assert time.monotonic() < deadline, "the cluster did not notice the stopped node"
        during.append((view_profile(on_victim), view_profile(elsewhere)))
    cluster.wait_until_down(timeout=DEADLINE_SECONDS)
    started = time.monotonic()
    down = [view_profile(on_victim), view_profile(elsewhere)]
    down.append(
        submit_login(browser(raise_request_exception=False), users[1], password).status_code
    )
    down_seconds = (time.monotonic() - started) / 3

    assert during, "the cluster went down before any request was made"
    assert {on for on, _ in during} == {503}, during
    assert {other for _, other in during} <= {200, 503}, during
    assert during[0][1] == 200, during  # the rest of the cluster served on
    assert down == [503, 503, 503]
    assert down_seconds < 2.0  # RETRIES, not redis-py's 10 x 0.25 s

    victim.start()
    cluster.wait_until_ok(timeout=DEADLINE_SECONDS)
    assert view_profile(elsewhere) == 200
    assert view_profile(on_victim) == 302  # its session went with the node's memory
    assert log_in(browser(), users[1], password)

    for node in cluster.nodes:
        node.stop()
    assert view_profile(elsewhere) == 503
    assert (
        submit_login(browser(raise_request_exception=False), users[1], password).status_code == 503
    )


# -- A least-privilege ACL user on every node ----------------------------------------------

# What the site's user needs on a cluster beyond what it needs on one Redis
# (test_redis_security.APP_COMMANDS): the client's look at the slot layout and
# at the command table, once per process.
CLUSTER_COMMANDS = ["cluster|slots", "command"]


@pytest.fixture
def cluster_as_app_user(cluster_servers, monkeypatch):
    """The cluster with the site's ACL user on every node, and the site logged in as it."""
    from sessiondemo.tests.test_redis_security import APP_COMMANDS, APP_USER

    password = "app-" + "x" * 24
    commands = [f"+{name}" for name in [*APP_COMMANDS, *CLUSTER_COMMANDS]]
    rule = ["on", f">{password}", "~sd:*", "resetchannels", "-@all", *commands]
    for node in cluster_servers.nodes:
        with node.client(socket_timeout=1) as client:
            client.acl_setuser(APP_USER, reset=True)
            client.execute_command("ACL", "SETUSER", APP_USER, *rule)
            client.acl_log_reset()
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv(
        "REDIS_URL", ",".join(f"redis://{APP_USER}:{password}@{address}" for address in cluster_servers.addresses)
    )
    base = Path(settings_module.__file__).with_name("base.py")
    sessions = runpy.run_path(str(base))["CACHES"]["sessions"]
    try:
        with sessions_at(sessions["LOCATION"], options=sessions["OPTIONS"]):
            yield cluster_servers
    finally:
        for node in cluster_servers.nodes:
            with node.client(socket_timeout=1) as client:
                client.acl_deluser(APP_USER)


@pytest.mark.django_db(transaction=True)
def test_the_site_runs_on_the_cluster_as_a_least_privilege_acl_user(cluster, cluster_as_app_user, password):
    """Login, profile, the async round, sessions list, ending, password change, clearsessions, logout."""
    from sessiondemo.tests.test_redis_security import APP_USER

    user = UserFactory(password=password)
    here, there = browser(), browser()
    log_in(here, user, password)
    log_in(there, user, password)
    assert here.get("/profile/", secure=True).status_code == 200
    assert here.get("/accounts/sessions/", secure=True).status_code == 200
    assert here.post("/accounts/sessions/others/end/", secure=True).status_code == 302
    assert not is_logged_in(there)
    assert change_password(here, password, NEW_PASSWORD).status_code == 302
    assert here.post("/accounts/logout/", secure=True).status_code == 302
    assert not is_logged_in(here)
    session_id, seen = asyncio.run(async_session_round(SessionStore, user, NEW_PASSWORD))
    assert seen == async_round_as_expected(session_id)
    run("clearsessions")

    denials = []
    for node in cluster_as_app_user.nodes:
        with node.client(socket_timeout=1) as client:
            denials += [f"{e['reason']} {e['object']}" for e in client.acl_log()]
            users = {c["user"] for c in client.client_list()}
            assert users <= {"default", APP_USER}
    assert denials == []


# -- TLS between the site and every node, and between the nodes ---------------------------


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A cluster whose nodes speak only TLS (clients, cluster bus, replication)."""
    import trustme

    from sessiondemo.tests.test_redis_security import write_tls_files

    directory = tmp_path_factory.mktemp("tls-cluster")
    servers = RedisClusterServers(directory, tls=write_tls_files(trustme.CA(), directory / "tls"))
    servers.start()
    yield servers
    servers.stop()


@pytest.mark.django_db(transaction=True)
def test_the_site_runs_on_a_cluster_over_tls(tls_cluster, monkeypatch, password):
    """Login, profile, the async round, the listing and logout, every connection TLS."""
    from redis.connection import SSLConnection

    from sessiondemo.sessions.connection import get_client

    location, options = production_cluster_options(monkeypatch, tls_cluster)
    assert location.startswith("rediss://")
    ca = {"ssl_ca_certs": str(tls_cluster.tls.ca), "ssl_cert_reqs": "required"}
    user = UserFactory(password=password)
    with sessions_at(location, options=options, pool_kwargs={"connection_class": CountingConnection, **ca}):
        here = browser()
        log_in(here, user, password)
        assert here.get("/profile/", secure=True).status_code == 200
        assert here.post("/accounts/logout/", secure=True).status_code == 302

        session_id, seen = asyncio.run(async_session_round(SessionStore, user, password))
        assert seen == async_round_as_expected(session_id)

        # The nodes listen for TLS only: the async round could only run over TLS too.
        assert all(
            issubclass(node.redis_connection.connection_pool.connection_class, SSLConnection)
            for node in get_client().get_nodes()
        )
