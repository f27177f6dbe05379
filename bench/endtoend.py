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
from .measure import SETTLE, Samples, timed

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
        if self.handler is None:
            # The middleware reads SESSION_ENGINE when the handler is built.
            self.handler = WSGIHandler()
        browsers = [web.logged_in_browser(self.handler, store, user) for user in users]
        timed(read, [(b,) for b in browsers], samples["read"], redis_client, "default", settle=SETTLE)
        items = [(b, number + n) for n, b in enumerate(browsers)]
        timed(write, items, samples["write"], redis_client, "default", settle=SETTLE)
        for browser in browsers:
            workload.delete(store, browser.session_key)
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
        for engine in order.sample(engines, len(engines)):
            with engine.active() as store:
                mine = login_users[block * login_size : (block + 1) * login_size]
                site, found = sites[engine], samples[engine]
                site.run_block(store, visitors[:size], mine, found, redis_client, block * size)
        progress(f"    block {block + 1} of {blocks}")
    timings = {engine: timings_of(by_op) for engine, by_op in samples.items()}
    return timings, {engine: site.login_failure for engine, site in sites.items()}


def timings_of(samples):
    """Return the Timing of each operation's samples; None for one that was not measured."""
    return {op: s.timing() if len(s.latencies) > 1 else None for op, s in samples.items()}
