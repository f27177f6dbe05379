"""Fixtures shared by every test: a private redis-server, clients and users."""

import pytest

# The middleware registers the engine's script that counts unknown ids.
from sessiondemo.sessions import middleware, scripts  # noqa: F401
from sessiondemo.testing.probes import RoundTrips
from sessiondemo.testing.redis_server import RedisServer
from sessiondemo.testing.store import point_sessions_at


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Start a redis-server of the suite's own on a free loopback port."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    point_sessions_at(server.url)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def redis(redis_server):
    """Return a plain client of the test Redis, emptied before each test."""
    if redis_server.process is None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    # As on a server that has run a while; tests of the cold case flush them.
    for script in scripts.SHAS:
        client.script_load(script)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def tasks_finished():
    """Let the tasks a test queued finish within it, not in the next one."""
    yield
    from sessiondemo.testing.tasks import wait_for_tasks

    wait_for_tasks()


@pytest.fixture
def round_trips():
    """Record the round trips the site makes to Redis while the block runs."""
    return RoundTrips.recording


@pytest.fixture
def password():
    return "correct horse battery staple"


@pytest.fixture
def admin_client(db, password):
    """A superuser, root, logged in to the admin on a browser of its own."""
    from sessiondemo.testing.web import admin_browser

    return admin_browser(password)


@pytest.fixture
def user(db, password):
    from accounts.tests.factories import UserFactory

    return UserFactory(password=password)
