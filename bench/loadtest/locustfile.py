"""
The load test's virtual users, and the conductor that steps them through the levels.

Run by ``bench/loadtest/run.py`` as ``locust --headless -f`` this file, once
per server and engine; everything it needs comes from the environment
(``LOADTEST_*``, see ``Plan``). Each virtual user is a browser with an account
of its own (``loadtest-000``, ``loadtest-001``, ...; run.py creates them) that
goes round this iteration as fast as the server answers, with no think time:

1. GET the login form (the CSRF cookie and token), POST it: a new session.
2. GET /profile/ 20 times: each reads the session (and slides its TTL).
3. Change the session twice: the password change form, GET and POST, then its
   "done" page; Django moves the session to a new id and stores the new
   password's hash in it, and the site notes the fresh password check in it.
   The first change sets another password, the second sets the first back.
4. GET "Your sessions" (/accounts/sessions/).
5. POST the logout form: the session is deleted.

That is 30 requests. Every request is checked: its status (no redirect is
followed; each is its own request, as a browser sends it), where a redirect
points, and that logged-in pages are served to the user logged in. Anything
else is an error.

A user's first round has a random number of profile loads (0 to 20), so that
users who start together spread over the loop. The conductor runs the levels
(users at once) in turn: it adds users over the first half of the warm-up,
waits for the rest of it, then measures a fixed window: the requests answered
as the flow expects, their latencies, Redis's CPU time (INFO), the server's
(its processes' CPU times) and this generator's. Errors and responses >= 500
are counted over the whole level, warm-up included. At the end it writes the
figures as JSON and stops locust.
"""

import itertools
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from http.cookiejar import DefaultCookiePolicy

import gevent
import psutil
import redis
from locust import FastHttpUser, constant, events, task
from locust.exception import RescheduleTask

from bench.loadtest.flow import PASSWORDS, PROFILE_LOADS, USERNAME

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
# What a page says went wrong: a form's errors, else its title.
SAYS = (re.compile(rb'role="alert">(?:<p>)?([^<]{1,120})'), re.compile(rb"<title>([^<]{1,120})</title>"))


class Plan:
    """What the conductor runs, from the environment run.py sets."""

    def __init__(self, environ):
        self.levels = [int(n) for n in environ.get("LOADTEST_LEVELS", "1,8,32,64").split(",")]
        self.warm_up = float(environ.get("LOADTEST_WARM_UP", 3))
        self.seconds = float(environ.get("LOADTEST_SECONDS", 10))
        self.output = environ.get("LOADTEST_OUTPUT")
        self.redis_url = environ.get("LOADTEST_REDIS_URL")
        self.server_pid = int(environ.get("LOADTEST_SERVER_PID", 0)) or None
        self.label = environ.get("LOADTEST_LABEL", "")


PLAN = Plan(os.environ)
_indices = itertools.count()


class LoopbackCookies(DefaultCookiePolicy):
    """
    Send ``Secure`` cookies back over plain HTTP, as browsers do to a server on loopback.

    The site's cookies are ``Secure`` (and ``__Host-``) as in production;
    Chromium and Firefox treat http://localhost and 127.0.0.1 as secure
    contexts and send them, Python's cookie jar would not.
    """

    def return_ok_secure(self, cookie, request):
        return True


class Flow(Exception):
    """Occurs when a response is not what the flow expects; the iteration starts again."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def other(password):
    """Return the password an iteration changes ``password`` to."""
    return PASSWORDS[1] if password == PASSWORDS[0] else PASSWORDS[0]


class Visitor(FastHttpUser):
    """One browser with its own account, logging in, working and logging out in a loop."""

    wait_time = constant(0)
    # One request at a time, as a browser's page flow; a fresh connection if the server closed it.
    concurrency = 1

    def on_start(self):
        self.client.cookiejar.set_policy(LoopbackCookies())
        self.username = USERNAME.format(next(_indices))
        # The users of a level start together: a first round with fewer profile
        # loads spreads them over the loop, so that any moment sees its mix.
        self.profile_loads = random.randint(0, PROFILE_LOADS)
        self.password = PASSWORDS[0]
        # What every page says to the user logged in, and to no one else.
        self.me = f"Signed in as <strong>{self.username}</strong>".encode()

    @task
    def iteration(self):
        try:
            self.log_in()
            for _ in range(self.profile_loads):
                self.page("profile", "/profile/", self.me)
            self.profile_loads = PROFILE_LOADS
            self.change_password()
            self.change_password()
            token = self.page("sessions", "/accounts/sessions/", self.me)
            self.post("logout", "/accounts/logout/", {"csrfmiddlewaretoken": token}, "/accounts/login/")
        except Flow:
            # Start again as a new browser would; the error is counted already.
            self.client.cookiejar.clear()
            raise RescheduleTask() from None

    def log_in(self):
        token = self.page("login form", "/accounts/login/")
        form = {"username": self.username, "password": self.password, "csrfmiddlewaretoken": token}
        try:
            self.post("login", "/accounts/login/", form, "/profile/")
        except Flow as e:
            if e.status == 200:
                # The form refused the password: a change that failed may have
                # saved it all the same. Try the other one next time (a wrong
                # password spends the account's login budget: no second guess now).
                self.password = other(self.password)
            raise

    def change_password(self):
        new = other(self.password)
        token = self.page("password form", "/accounts/password_change/", self.me)
        form = {
            "old_password": self.password,
            "new_password1": new,
            "new_password2": new,
            "csrfmiddlewaretoken": token,
        }
        done = "/accounts/password_change/done/"
        try:
            self.post("password change", "/accounts/password_change/", form, done)
        except Flow as e:
            if e.status != 200:
                # Past the form (which answers 200 when it refuses): the new
                # password is saved before the session, so it most likely holds.
                self.password = new
            raise
        self.password = new
        self.page("password changed", done, self.me)

    def page(self, name, path, expected=None):
        """GET ``path``; expect a 200 (with ``expected`` in it); return the page's CSRF token."""
        with self.request("GET", name, path) as response:
            body = response.content or b""
            if response.status_code != 200:
                self.fail(response, f"status {response.status_code}, not 200")
            if expected is not None and expected not in body:
                self.fail(response, f"no {expected.decode()!r} in the page")
            match = TOKEN.search(body)
            return match.group(1).decode() if match else None

    def post(self, name, path, form, location):
        """POST ``form`` to ``path``; expect a redirect to ``location``."""
        with self.request("POST", name, path, data=form) as response:
            found = response.headers.get("location") if response.headers else None
            if response.status_code != 302 or found != location:
                to = f" to {found}" if found else ""
                self.fail(response, f"status {response.status_code}{to}, not 302 to {location}")

    def request(self, method, name, path, **kwargs):
        headers = {"User-Agent": USER_AGENT, "Accept": "text/html"}
        return self.client.request(
            method, path, name=name, headers=headers, allow_redirects=False, catch_response=True, **kwargs
        )

    @staticmethod
    def fail(response, message):
        says = next(filter(None, (pattern.search(response.content or b"") for pattern in SAYS)), None)
        if says is not None:
            message = f"{message} ({says.group(1).decode(errors='replace').strip()})"
        elif (cause := response.request_meta.get("exception")) is not None:
            message = f"{message}: {cause!r}"
        response.failure(message)
        raise Flow(message, response.status_code)


class Level:
    """What one level's requests did: all of them, and those inside its measured window."""

    def __init__(self, users):
        self.users = users
        self.measuring = False
        self.latencies = defaultdict(list)  # by request name, ms, in the window
        self.errors = Counter()  # by message, over the whole level
        self.server_errors = 0  # responses >= 500, over the whole level
        self.requests = 0  # over the whole level
        self.iterations = 0  # logouts, in the window
        self.window = {}

    def record(self, name, response_time, response, exception):
        self.requests += 1
        status = getattr(response, "status_code", 0) or 0
        if status >= 500:
            self.server_errors += 1
        if exception is not None:
            self.errors[f"{name}: {exception}"[:200]] += 1
        elif self.measuring:
            self.latencies[name].append(response_time)
            self.iterations += name == "logout"

    def summary(self):
        every = [ms for values in self.latencies.values() for ms in values]
        seconds = self.window["seconds"]
        return {
            "users": self.users,
            "requests": len(every),
            "requests_per_second": len(every) / seconds,
            "iterations": self.iterations,
            **percentiles(every),
            "by_request": {name: {"count": len(v), **percentiles(v)} for name, v in self.latencies.items()},
            "errors": sum(self.errors.values()),
            "error_messages": dict(self.errors.most_common(10)),
            "server_errors": self.server_errors,
            "requests_in_level": self.requests,
            **self.window,
        }


def percentiles(values):
    if len(values) < 2:
        value = values[0] if values else None
        return {"p50_ms": value, "p95_ms": value, "p99_ms": value}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": cuts[49], "p95_ms": cuts[94], "p99_ms": cuts[98]}


current = {"level": None}


@events.request.add_listener
def on_request(name, response_time, response=None, exception=None, **kwargs):
    level = current["level"]
    if level is not None:
        level.record(name, response_time, response, exception)


class CPU:
    """CPU seconds so far of Redis (INFO cpu), the server's processes, and this process."""

    def __init__(self, plan):
        self.redis = redis.Redis.from_url(plan.redis_url) if plan.redis_url else None
        self.server = psutil.Process(plan.server_pid) if plan.server_pid else None
        self.me = psutil.Process()

    def read(self):
        found = {"at": time.perf_counter()}
        if self.redis is not None:
            info = self.redis.info("cpu")
            found["redis"] = info["used_cpu_sys"] + info["used_cpu_user"]
            found["redis_commands"] = self.redis.info("stats")["total_commands_processed"]
            stats = self.redis.info("commandstats")
            found["redis_calls"] = {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}
        if self.server is not None:
            processes = [self.server, *self.server.children(recursive=True)]
            found["server"] = sum(sum(p.cpu_times()[:2]) for p in processes if p.is_running())
        found["generator"] = sum(self.me.cpu_times()[:2])
        return found


def conduct(environment, plan):
    """Run every level in turn, write the figures, and stop locust."""
    runner = environment.runner
    cpu = CPU(plan)
    results = []
    try:
        for users in plan.levels:
            level = current["level"] = Level(users)
            warmed_up = time.monotonic() + plan.warm_up
            if runner.target_user_count != users:
                # New users join over the first half of the warm-up, not at once
                # (and at most 100 a second, above which locust warns).
                rate = (users - runner.user_count) / max(plan.warm_up / 2, 0.1)
                runner.start(users, spawn_rate=min(max(rate, 1), 100))
            while runner.user_count != users:
                gevent.sleep(0.02)
            gevent.sleep(max(warmed_up - time.monotonic(), 0))
            before = cpu.read()
            level.measuring = True
            gevent.sleep(plan.seconds)
            level.measuring = False
            after = cpu.read()
            seconds = after["at"] - before["at"]
            level.window = {"seconds": seconds}
            for what in ("redis", "server", "generator"):
                if what in before:
                    level.window[f"{what}_cpu_seconds"] = after[what] - before[what]
            if "redis_commands" in before:
                # Less this conductor's INFO commands in between.
                level.window["redis_commands"] = after["redis_commands"] - before["redis_commands"] - 3
                calls = {name: n - before["redis_calls"].get(name, 0) for name, n in after["redis_calls"].items()}
                calls["info"] = calls.get("info", 0) - 3
                level.window["redis_calls"] = {name: n for name, n in sorted(calls.items()) if n > 0}
            results.append(summary := level.summary())
            say(progress_line(plan.label, summary))
    except Exception as e:  # noqa: BLE001 (said, written, and locust still stopped)
        say(f"{plan.label}: the conductor failed: {e!r}")
        results.append({"conductor_error": repr(e)})
    finally:
        current["level"] = None
        if plan.output:
            with open(plan.output, "w") as file:
                json.dump({"label": plan.label, "levels": results}, file, indent=1)
        runner.quit()


def progress_line(label, s):
    redis_us = 1e6 * s.get("redis_cpu_seconds", 0) / max(s["requests"], 1)
    return (
        f"  {label} · {s['users']:>2} users: {s['requests_per_second']:7,.0f} req/s · "
        f"p50/p95/p99 {s['p50_ms'] or 0:.0f}/{s['p95_ms'] or 0:.0f}/{s['p99_ms'] or 0:.0f} ms · "
        f"errors {s['errors']} · >=500 {s['server_errors']} · Redis CPU {redis_us:.0f} µs/req"
    )


def say(message):
    """Print a line of progress where run.py shows it (LOADTEST_PROGRESS_FD), else on stderr."""
    print(message, file=_progress, flush=True)


_progress = sys.stderr
if os.environ.get("LOADTEST_PROGRESS_FD"):
    _progress = os.fdopen(int(os.environ["LOADTEST_PROGRESS_FD"]), "w", buffering=1)


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    gevent.spawn(conduct, environment, PLAN)
