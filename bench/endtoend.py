"""
Requests through the site's whole middleware stack, timed per engine: a read, a write, a login.

read: a logged-in GET of /bench/read/ (the session loaded, the user loaded
and checked). write: a logged-in GET of /bench/write/, which stores one key in
the session. login: the site's login form posted (the throttle's reservation
and release, the password check, the new session, the device cookie), from a
browser that fetched the form first, untimed.
"""

import random

from django.conf import settings

from sessiondemo.handlers import WSGIHandler

from . import web, workload
from .measure import SETTLE, TURN, Samples, timed

OPERATIONS = ("read", "write", "login")
WARM_UP = 50  # reads and writes per engine, untimed; and a fifth as many logins


def read(browser):
    browser.get("/bench/read/")


def write(browser, number):
    browser.get("/bench/write/", {"page": f"/items/{number}/"})


def log_in(browser, form):
    browser.post("/accounts/login/", form, expect=302)


class Site:
    """One engine's view of the site: its handler, built while the engine is active."""

    def __init__(self, engine):
        self.engine = engine
        self.handler = None
        self.login_failure = None  # why the site's login fails on this engine, if it does

    def run_block(self, store, users, login_users, samples, redis_client, number=0):
        """Time a read and a write per user in ``users``, and a login per one in ``login_users``."""
        browsers = self.browsers(store, users)
        for op, items in self.gets(browsers, number).items():
            timed(op, items, samples[op.__name__], redis_client, "default", settle=SETTLE)
        self.end(store, browsers)
        self.run_logins(store, login_users, samples, redis_client)

    def browsers(self, store, users):
        """Return a browser logged in as each of ``users``, through the engine API (untimed)."""
        if self.handler is None:
            # The middleware reads SESSION_ENGINE when the handler is built.
            self.handler = WSGIHandler()
        return [web.logged_in_browser(self.handler, store, user) for user in users]

    @staticmethod
    def gets(browsers, number):
        """Return the timed GETs, as {operation: its items}, for ``browsers``."""
        return {read: [(b,) for b in browsers], write: [(b, number + n) for n, b in enumerate(browsers)]}

    @staticmethod
    def end(store, browsers):
        for browser in browsers:
            workload.delete(store, browser.session_key)

    def run_logins(self, store, login_users, samples, redis_client):
        """Time a login per one in ``login_users``, unless this engine's login is known to fail."""
        if login_users and self.login_failure is None:
            forms = [web.login_form(self.handler, user) for user in login_users]
            try:
                timed(log_in, forms, samples["login"], redis_client, "default", settle=SETTLE)
            except web.RequestFailed as e:
                self.login_failure = str(e)
                samples["login"].latencies.clear()
                return
            for browser, _ in forms:
                workload.delete(store, browser.cookies[settings.SESSION_COOKIE_NAME])


def measure_web(engines, count, logins, redis_client, progress, blocks=10):
    """
    Time ``count`` reads and writes and ``logins`` logins per engine, after a warm-up.

    The engines take turns in ``blocks`` blocks, in a new random order each
    time; each block has users of its own. Return {engine: {operation:
    Timing or None}} and {engine: why its login fails}.
    """
    size, login_size, warm_logins = count // blocks, logins // blocks, WARM_UP // 5
    users = web.make_users(max(size, WARM_UP) + warm_logins + logins)
    visitors, login_users = users[: max(size, WARM_UP)], users[max(size, WARM_UP) :]
    sites = {engine: Site(engine) for engine in engines}
    samples = {engine: {op: Samples() for op in OPERATIONS} for engine in engines}
    for engine, site in sites.items():
        with engine.active() as store:
            warm_up = {op: Samples() for op in OPERATIONS}
            logging_in = login_users[:warm_logins]
            site.run_block(store, visitors[:WARM_UP], logging_in, warm_up, redis_client)
    login_users = login_users[warm_logins:]
    order = random.Random(1)
    for block in range(blocks):
        # Each GET in turns of TURN requests per engine, in a new random order
        # each turn (as measure.run_in_turns()); then the logins, an engine at a time.
        gets = {}
        for engine in engines:
            with engine.active() as store:
                gets[engine] = sites[engine].browsers(store, visitors[:size])
        for op in (read, write):
            for start in range(0, size, TURN):
                for engine in order.sample(engines, len(engines)):
                    items = Site.gets(gets[engine], block * size)[op][start : start + TURN]
                    with engine.active():
                        timed(
                            op, items, samples[engine][op.__name__], redis_client, "default",
                            new_block=start == 0, settle=SETTLE,
                        )  # fmt: skip
        for engine in order.sample(engines, len(engines)):
            with engine.active() as store:
                sites[engine].end(store, gets[engine])
                mine = login_users[block * login_size : (block + 1) * login_size]
                sites[engine].run_logins(store, mine, samples[engine], redis_client)
        progress(f"    block {block + 1} of {blocks}")
    timings = {engine: timings_of(by_op) for engine, by_op in samples.items()}
    return timings, {engine: site.login_failure for engine, site in sites.items()}


def timings_of(samples):
    """Return the Timing of each operation's samples; None for one that was not measured."""
    return {op: s.timing() if len(s.latencies) > 1 else None for op, s in samples.items()}
