"""
The native asyncio path, through Django's ASGI handler: no thread for the session, the same guarantees.

Each test runs its requests in a loop of its own (asyncio.run), as an ASGI
server does; a loop made by async_to_sync() would get the thread path on
purpose (protocol.arun()).
"""

import asyncio
import contextlib

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.db import connections
from django.http import HttpResponse
from django.test import AsyncClient, Client
from django.urls import path

from sessiondemo.sessions import connection, index, protocol
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.probes import AsyncCountingConnection
from sessiondemo.testing.web import (
    assert_unavailable,
    file_in_index,
    index_entries,
    redis_ms,
    session_exists,
    session_keys,
    stored,
)
from sessiondemo.testing.web import log_in as log_in_sync
from sessiondemo.urls import urlpatterns as site_urlpatterns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture(autouse=True)
def async_connections_closed():
    """Close the database connections that the test's event loop opened in asgiref's thread."""
    yield
    # Django's test clients keep connections open across requests: left in
    # the thread sync_to_async() uses, one keeps PostgreSQL's test database busy.
    asyncio.run(sync_to_async(connections.close_all)())


# -- Views and URLs of these tests --------------------------------------------------


async def read_async(request):
    with thread_hops() as hops:
        value = await request.session.aget("remembered", "nothing")
    return HttpResponse(f"{value} {len(hops)}")


async def remember_async(request, key, value):
    await request.session.aget(key)  # loaded first, as a view that reads before it writes
    await both_requests_loaded()
    await request.session.aset(key, value)
    return HttpResponse("remembered")


async def end_then_write(request):
    await request.session.aget("anything")  # loads it
    # Another request (a logout in another tab) ends the session meanwhile.
    await SessionStore(request.session.session_key).adelete()
    await request.session.aset("after", "the end")
    return HttpResponse("written")


urlpatterns = [
    *site_urlpatterns,
    path("test/read-async/", read_async),
    path("test/remember-async/<str:key>/<str:value>/", remember_async),
    path("test/end-then-write/", end_then_write),
]

_barrier = None


async def both_requests_loaded():
    if _barrier is not None:
        await _barrier.wait()


# -- Helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def thread_hops():
    """Record the function of every sync_to_async() call made meanwhile: each is a thread hop."""
    hops = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(self.func)
        return await original(self, *args, **kwargs)

    SyncToAsync.__call__ = counted
    try:
        yield hops
    finally:
        SyncToAsync.__call__ = original


async def log_in(client, user, password):
    response = await client.post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    )
    assert response.status_code == 302
    return response.cookies[COOKIE].value


def session_hops(hops):
    """Return the hops that ran code of the session engine or its middleware."""
    return [func for func in hops if _module_of(func).startswith(("sessiondemo.sessions", "django.contrib.sessions"))]


def database_hops(hops):
    """Return the hops that ran a query (Django's ORM is sync)."""
    return [func for func in hops if _module_of(func) == "django.db.models.query"]


def _module_of(func):
    owner = getattr(func, "__self__", None)
    return type(owner).__module__ if owner is not None else getattr(func, "__module__", "")




# -- No thread for the session -------------------------------------------------------------


def test_an_async_view_reads_its_session_with_no_thread_hop(user, password):
    async def flow():
        client = AsyncClient()
        await log_in(client, user, password)
        await client.get("/test/remember-async/remembered/blue/", secure=True)
        with thread_hops() as hops:
            response = await client.get("/test/read-async/", secure=True)
        return response, hops

    response, hops = asyncio.run(flow())

    assert response.status_code == 200
    assert response.text == "blue 0"
    # Nor did the middleware's load, save or anything else of the session take one.
    assert session_hops(hops) == []


def test_the_thread_path_kept_for_comparison_hops(user, password, settings):
    settings.SESSION_REDIS_NATIVE_ASYNC = False

    async def flow():
        client = AsyncClient()
        await log_in(client, user, password)
        with thread_hops() as hops:
            response = await client.get("/test/read-async/", secure=True)
        return response, hops

    response, hops = asyncio.run(flow())

    assert response.text == "nothing 1"
    assert session_hops(hops) != []  # the middleware's too
    # And the site's other middleware hop as Django's do: the stack as Django ships it.
    assert {"sessiondemo.middleware", "accounts.middleware"} <= {_module_of(func) for func in hops}


def test_the_profile_page_is_async_and_reads_the_session_on_the_loop(user, password):
    async def flow():
        client = AsyncClient()
        await log_in(client, user, password)
        with thread_hops() as hops:
            response = await client.get("/profile/", secure=True)
        return response, hops

    response, hops = asyncio.run(flow())

    assert response.status_code == 200
    assert user.username in response.text
    assert session_hops(hops) == []
    # The user's query and the profile's; the others are Django's handler's
    # (the request's signals, closing the response), no middleware's.
    assert len(database_hops(hops)) == 2
    others = [func for func in hops if func not in database_hops(hops)]
    assert {_module_of(func) for func in others} <= {"django.dispatch.dispatcher", "django.http.response"}


# -- The guarantees ---------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused_on_the_loop(user, password):
    async def flow():
        client = AsyncClient(enforce_csrf_checks=True)
        return await client.post("/accounts/login/", {"username": user.username, "password": password}, secure=True)

    response = asyncio.run(flow())

    assert response.status_code == 403
    assert "could not be verified" in response.text


def test_the_round_trip_budgets_hold_on_the_async_path(user, password, round_trips):
    async def flow():
        client = AsyncClient()
        with round_trips() as login:
            await log_in(client, user, password)
        with round_trips() as read:
            assert (await client.get("/profile/", secure=True)).status_code == 200
        with round_trips() as write:
            assert (await client.get("/test/remember-async/colour/red/", secure=True)).status_code == 200
        with round_trips() as logout:
            assert (await client.post("/accounts/logout/", secure=True)).status_code == 302
        return login, read, write, logout

    login, read, write, logout = asyncio.run(flow())

    assert len(login) <= 3
    assert read.trips == [["GETEX", "PEXPIRETIME"]]
    assert len(write) == 2
    assert len(logout) <= 2


def test_an_id_this_server_never_issued_is_an_anonymous_visitor_and_is_counted(redis):
    async def flow():
        client = AsyncClient()
        # Well-formed, but its check characters say this server never issued it.
        client.cookies[COOKIE] = "a" * 32
        return await client.get("/profile/", secure=True)

    response = asyncio.run(flow())

    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)
    assert session_keys(redis) == []
    assert [key for key in redis.scan_iter("sd:t:unknown-ids:*")] != []


def test_concurrent_async_writes_of_different_keys_lose_no_update(user, password, redis):
    global _barrier

    async def flow():
        global _barrier
        client = AsyncClient()
        session_id = await log_in(client, user, password)
        _barrier = asyncio.Barrier(2)
        responses = await asyncio.gather(
            client.get("/test/remember-async/first/1/", secure=True),
            client.get("/test/remember-async/second/2/", secure=True),
        )
        return session_id, responses

    try:
        session_id, responses = asyncio.run(flow())
    finally:
        _barrier = None

    assert [response.status_code for response in responses] == [200, 200]
    data = SessionStore(session_id).load()
    assert (data["first"], data["second"]) == ("1", "2")
    assert stored(redis, session_id).user_id == str(user.pk)


def test_a_write_to_a_session_ended_meanwhile_fails_and_does_not_resurrect_it(user, password, redis):
    async def flow():
        client = AsyncClient(raise_request_exception=False)
        session_id = await log_in(client, user, password)
        return session_id, await client.get("/test/end-then-write/", secure=True)

    session_id, response = asyncio.run(flow())

    assert response.status_code == 400  # SessionInterrupted
    assert not session_exists(redis, session_id)


def test_the_async_store_raises_update_error_on_a_concurrently_ended_session(user, redis):
    async def flow():
        store = SessionStore()
        store["who"] = "me"
        await store.acreate()
        reader = SessionStore(store.session_key)
        assert await reader.aget("who") == "me"
        await SessionStore(store.session_key).adelete()
        reader["who"] = "someone else"
        with pytest.raises(UpdateError):
            await reader.asave()
        return store.session_key

    session_id = asyncio.run(flow())

    assert not session_exists(redis, session_id)


def test_redis_down_is_a_503_on_the_async_path_then_recovery(user, password, redis_server):
    async def flow(client):
        return await client.get("/profile/", secure=True)

    client = AsyncClient(raise_request_exception=False)
    asyncio.run(log_in(client, user, password))
    redis_server.stop()
    try:
        assert_unavailable(asyncio.run(flow(client)))
    finally:
        redis_server.start()

    # The test's Redis keeps nothing over a restart: a new login, in the same process.
    asyncio.run(log_in(client, user, password))
    assert asyncio.run(flow(client)).status_code == 200


# -- Clients, loops and servers -------------------------------------------------------------


def test_each_loop_has_one_client_closed_with_the_loop(user, password, redis):
    async def flow():
        first = connection.get_async_client()
        assert connection.get_async_client() is first
        client = AsyncClient()
        await log_in(client, user, password)
        assert (await client.get("/profile/", secure=True)).status_code == 200
        return first, set(AsyncCountingConnection.open)

    first, open_in_first = asyncio.run(flow())
    second, open_in_second = asyncio.run(flow())

    assert second is not first
    assert open_in_first and open_in_second and not open_in_first & open_in_second
    assert AsyncCountingConnection.open == set()


def test_an_async_view_under_wsgi_uses_the_process_connections(user, password, redis):
    client = Client()
    client.post("/accounts/login/", {"username": user.username, "password": password}, secure=True)
    client.get("/profile/", secure=True)
    before = redis.info("stats")["total_connections_received"]

    for _ in range(20):
        assert client.get("/profile/", secure=True).status_code == 200

    # A loop made for each request would have connected each time.
    assert redis.info("stats")["total_connections_received"] - before <= 1


def test_aclear_expired_prunes_on_the_asyncio_client(user, password, redis):
    client = Client()
    live = log_in_sync(client, user, password)
    file_in_index(redis, user.pk, {"e" * 25 + "A": redis_ms(redis) - index.horizon_ms() - 1000})

    with thread_hops() as hops:
        report = asyncio.run(SessionStore.aclear_expired())

    assert (report.indexes_scanned, report.entries_pruned) == (1, 1)
    assert list(index_entries(redis, user.pk)) == [session_name(live)]
    assert session_hops(hops) == []


def test_user_listing_and_ending_on_the_async_path(user, password, redis):
    async def flow():
        here, there = AsyncClient(), AsyncClient()
        here_id = await log_in(here, user, password)
        there_id = await log_in(there, user, password)
        listed = await SessionStore.auser_sessions(user.pk)
        ended = await SessionStore(here_id).aend_other_sessions(user.pk)
        return here_id, there_id, listed, ended

    here_id, there_id, listed, ended = asyncio.run(flow())

    assert len(listed) == 2
    assert ended == 1
    assert session_exists(redis, here_id)
    assert not session_exists(redis, there_id)
    assert protocol.run(index.user_names(user.pk)) == [here.name for here in SessionStore.user_sessions(user.pk)]
