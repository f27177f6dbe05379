"""
A bounded load of logged-in visitors on the site, from several threads, recording every answer.

For the tests that change Redis under traffic (a failover, a resharding):
each thread has visitors of its own and cycles through them, reading
/profile/ and now and then logging a new visitor in; every thread also writes
a key of its own (``t<thread>``) into each of a few shared sessions, with a
counter, so that concurrent writes of different keys to one session are
exercised, and what each thread had acknowledged can be compared with what
Redis holds at the end (no lost update). Every answer is recorded with when
it came (time.monotonic()).

Django's test Client, one per visitor and thread, through the site's whole
middleware stack. Tests that use it mark themselves
``pytest.mark.urls("sessiondemo.testing.traffic")`` (the site's URLs plus the
write below) and ``django_db(transaction=True)`` (the threads' database
connections must see the accounts).
"""

import asyncio
import contextlib
import itertools
import threading
import time
import traceback
from typing import NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in
from django.db import connections
from django.http import HttpResponse
from django.test import AsyncClient
from django.urls import path

from sessiondemo.urls import urlpatterns as site_urlpatterns

from .web import browser, submit_login

COOKIE = settings.SESSION_COOKIE_NAME
# What the site's 503 page (templates/503.html) says.
OUTAGE_PAGE = "The site is temporarily unavailable (503)"


def put(request, key, value):
    """Set one key of the session, as any view that writes the session does."""
    request.session[key] = int(value)
    return HttpResponse("put")


urlpatterns = [*site_urlpatterns, path("test/put/<str:key>/<int:value>/", put)]


class Answer(NamedTuple):
    """One request of the traffic and what it got."""

    at: float  # when the answer came (time.monotonic())
    started: float
    thread: int
    kind: str  # "view", "write" or "login"
    target: str  # the session id it used (for a login: the new one, or "")
    status: int
    text: str  # for a 5xx: OUTAGE_PAGE if it is the site's 503 page, else the body's start
    value: int = -1  # for a write: the value it wrote


class Visitor(NamedTuple):
    """A logged-in browser: its test Client and its session id."""

    client: object
    session_id: str

    def another_tab(self):
        """Return a new Client of the same browser (User-Agent, address, cookie)."""
        defaults = self.client.defaults
        client = browser(defaults["HTTP_USER_AGENT"], defaults["REMOTE_ADDR"], raise_request_exception=False)
        client.cookies[COOKIE] = self.session_id
        return client

    def another_async_tab(self):
        """Return a new AsyncClient (through Django's ASGI handler) of the same browser."""
        client = async_browser(self.client.defaults["HTTP_USER_AGENT"])
        client.cookies[COOKIE] = self.session_id
        return client


def async_browser(user_agent=None):
    """Return an AsyncClient with a User-Agent of its own (or ``user_agent``), from 127.0.0.1."""
    user_agent = user_agent or browser().defaults["HTTP_USER_AGENT"]
    return AsyncClient(headers={"user-agent": user_agent}, raise_request_exception=False)


def visitor(user, password):
    """Log ``user`` in on a new browser; return the Visitor, or None if the login was refused."""
    client = browser(raise_request_exception=False)
    response = submit_login(client, user, password)
    if response.status_code != 302:
        return None
    return Visitor(client, response.cookies[COOKIE].value)


def browser_with(session_id):
    """Return a new browser that carries the cookie of ``session_id``."""
    client = browser(raise_request_exception=False)
    client.cookies[COOKIE] = session_id
    return client


@contextlib.contextmanager
def last_login_unrecorded():
    """
    Leave User.last_login alone at login inside the block, on SQLite.

    The suite's SQLite database lives in memory, shared between threads
    through one cache, which refuses a write while another thread reads a
    table ("database table is locked") instead of waiting. The traffic is
    about Redis: its logins write no row.
    """
    if connections["default"].vendor != "sqlite":
        yield
        return
    user_logged_in.disconnect(dispatch_uid="update_last_login")
    try:
        yield
    finally:
        user_logged_in.connect(update_last_login, dispatch_uid="update_last_login")


class Traffic:
    """
    ``threads`` threads of requests until stop() (or ``max_requests`` each, or
    ``deadline`` seconds): views of their ``visitors`` (dealt out in turn), a
    write to one of the ``shared`` visitors' sessions (in turn) every
    ``write_every`` requests and a login of one of ``users`` every
    ``login_every`` requests (0: none). And ``async_threads`` more, each an
    event loop of its own making the same requests with AsyncClient, through
    Django's ASGI handler (the engine's redis.asyncio client), to visitors it
    logs in itself.
    """

    def __init__(
        self,
        visitors,
        *,
        shared=(),
        users=(),
        password=None,
        threads=4,
        async_threads=0,
        write_every=3,
        login_every=0,
        max_requests=5000,
        deadline=60.0,
    ):
        self.visitors = list(visitors)
        self.shared = list(shared)
        self.users = list(users)
        self.password = password
        self.threads = threads
        self.async_threads = async_threads
        self.write_every = write_every
        self.login_every = login_every
        self.max_requests = max_requests
        self.deadline = deadline
        self.answers = []  # list.append is atomic: threads share it
        # (thread, shared session id) -> the last value it wrote there and got a 200 for, and the last it tried.
        self.acknowledged = {}
        self.tried = {}
        # (thread, shared session id) -> that thread's browser tab of the session (its cookie follows renewals).
        self.tabs = {}
        # The visitors the asyncio threads logged in (their clients are AsyncClients).
        self.async_visitors = []
        self.errors = []
        self._stop = threading.Event()
        self._workers = []
        self._quiet_database = last_login_unrecorded()
        self._next_user = itertools.count()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        self._quiet_database.__enter__()
        for i in range(self.threads + self.async_threads):
            run = self._run if i < self.threads else self._run_async
            worker = threading.Thread(target=run, args=(i,), name=f"traffic-{i}")
            worker.start()
            self._workers.append(worker)

    def stop(self):
        """Stop the threads and wait for them; raise what failed in one."""
        self._stop.set()
        for worker in self._workers:
            worker.join(self.deadline + 30)
        self._workers = []
        self._quiet_database.__exit__(None, None, None)
        if self.errors:
            raise self.errors[0]

    def _plan(self, n, ends):
        """Return what the ``n``-th request of a thread is: "stop", "login", "write" or "view"."""
        if self._stop.is_set() or time.monotonic() > ends:
            return "stop"
        if self.login_every and n % self.login_every == self.login_every - 1:
            return "login"
        if self.shared and n % self.write_every == self.write_every - 1:
            return "write"
        return "view"

    def _run(self, i):
        try:
            mine = [v for n, v in enumerate(self.visitors) if n % self.threads == i]
            writers = [(v.session_id, v.another_tab()) for v in self.shared]
            self.tabs.update({(i, session_id): tab for session_id, tab in writers})
            ends = time.monotonic() + self.deadline
            for n in range(self.max_requests):
                match self._plan(n, ends):
                    case "stop":
                        return
                    case "login":
                        self._login(i)
                    case "write":
                        session_id, client = writers[(n // self.write_every) % len(writers)]
                        self._write(i, n, session_id, client)
                    case "view" if mine:
                        self._view(i, mine[n % len(mine)])
        except BaseException as e:  # noqa: BLE001 (reported by stop(), not lost in the thread)
            self.errors.append(e)
        finally:
            connections.close_all()

    def _run_async(self, i):
        try:
            asyncio.run(self._arun(i))
        except BaseException as e:  # noqa: BLE001 (reported by stop(), not lost in the thread)
            self.errors.append(e)
        finally:
            connections.close_all()

    async def _arun(self, i):
        writers = [(v.session_id, v.another_async_tab()) for v in self.shared]
        self.tabs.update({(i, session_id): tab for session_id, tab in writers})
        mine = []  # Visitors whose client is an AsyncClient
        try:
            await self._aloop(i, writers, mine)
        finally:
            self.async_visitors.extend(mine)
            # The ORM ran in asgiref's thread, where the test client keeps its connection open.
            await sync_to_async(connections.close_all)()

    async def _aloop(self, i, writers, mine):
        ends = time.monotonic() + self.deadline
        for n in range(self.max_requests):
            match self._plan(n, ends):
                case "stop":
                    return
                case "write":
                    session_id, client = writers[(n // self.write_every) % len(writers)]
                    started = time.monotonic()
                    self.tried[i, session_id] = n
                    response = await client.get(f"/test/put/t{i}/{n}/", secure=True)
                    if self._record(i, "write", session_id, started, response, n) == 200:
                        self.acknowledged[i, session_id] = n
                case "view" if mine:
                    visit = mine[n % len(mine)]
                    started = time.monotonic()
                    response = await visit.client.get("/profile/", secure=True)
                    self._record(i, "view", visit.session_id, started, response)
                case _:  # a login, or a view before this thread has a visitor
                    client = async_browser()
                    user = self.users[next(self._next_user) % len(self.users)]
                    started = time.monotonic()
                    response = await client.post(
                        "/accounts/login/", {"username": user.username, "password": self.password}, secure=True
                    )
                    session_id = response.cookies[COOKIE].value if response.status_code == 302 else ""
                    self._record(i, "login", session_id, started, response)
                    if session_id and len(mine) < 3:
                        mine.append(Visitor(client, session_id))

    def _record(self, i, kind, target, started, response, value=-1):
        status = response.status_code
        text = ""
        if status >= 500:
            body = response.content.decode(errors="replace")
            text = OUTAGE_PAGE if OUTAGE_PAGE in body and response.get("Retry-After") else body[:300]
            if text != OUTAGE_PAGE and getattr(response, "exc_info", None):
                # What the view raised: the test's message shows it.
                text = "".join(traceback.format_exception(*response.exc_info)[-30:])
        self.answers.append(Answer(time.monotonic(), started, i, kind, target, status, text, value))
        return status

    def _view(self, i, visit):
        started = time.monotonic()
        self._record(i, "view", visit.session_id, started, visit.client.get("/profile/", secure=True))

    def _write(self, i, n, session_id, client):
        started = time.monotonic()
        self.tried[i, session_id] = n
        response = client.get(f"/test/put/t{i}/{n}/", secure=True)
        if self._record(i, "write", session_id, started, response, n) == 200:
            self.acknowledged[i, session_id] = n

    def _login(self, i):
        user = self.users[next(self._next_user) % len(self.users)]
        client = browser(raise_request_exception=False)
        started = time.monotonic()
        response = submit_login(client, user, self.password)
        session_id = response.cookies[COOKIE].value if response.status_code == 302 else ""
        self._record(i, "login", session_id, started, response)

    # -- What the traffic saw -----------------------------------------------------------

    def statuses(self, kind=None, *, asgi=None):
        """Return {status: count} of the answers (of ``kind``; through ASGI or not), or of all."""
        counts = {}
        for answer in self.answers:
            if asgi is not None and (answer.thread >= self.threads) != asgi:
                continue
            if kind is None or answer.kind == kind:
                counts[answer.status] = counts.get(answer.status, 0) + 1
        return dict(sorted(counts.items()))

    def current_ids(self):
        """Return the session id each visitor and tab holds now (renewals give new ones)."""
        clients = [v.client for v in self.visitors + self.async_visitors] + list(self.tabs.values())
        return [client.cookies[COOKIE].value for client in clients if COOKIE in client.cookies]

    def logins(self, until=None):
        """Return the ids of the logins acknowledged (302) before ``until`` (time.monotonic()), or all."""
        return [
            a.target
            for a in self.answers
            if a.kind == "login" and a.status == 302 and (until is None or a.at < until)
        ]
