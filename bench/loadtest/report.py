"""The load test's report: the machine, the goals, the figures by server, engine and level, and the method."""

import dataclasses
import datetime
import importlib.metadata
import os
import platform
from pathlib import Path

from bench.environment import IDLE_STATES, cpu_model, engine_version

from .flow import PROFILE_LOADS, REQUESTS
from .servers import CONFIGS

ROOT = Path(__file__).resolve().parent.parent.parent
# The level at which the async goal is measured, and the per-request table shown.
GOAL_LEVEL = 32
ASYNC_TARGET = 1.3


def engine_reads_native_async_setting():
    """Return True if the engine's code names SESSION_REDIS_NATIVE_ASYNC (issue 9, part 3)."""
    return any(
        "SESSION_REDIS_NATIVE_ASYNC" in path.read_text(errors="replace")
        for path in (ROOT / "sessiondemo" / "sessions").glob("*.py")
    )


def engine_note():
    """Return what the report must say about the engine's async paths, if anything."""
    if engine_reads_native_async_setting():
        return ""
    return (
        "the engine at this commit does not read SESSION_REDIS_NATIVE_ASYNC: both of our rows on "
        "uvicorn ran the same code (Django's sync_to_async fallbacks)."
    )


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(redis_client, args, database):
    """Return the facts about this run that belong at the top of the report."""
    import django

    return {
        "engine (sessiondemo/sessions) at commit": engine_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()}, shared by the server, Redis and the load generator",
        "CPU idle states": IDLE_STATES["note"],
        "cpu": cpu_model(),
        "load average at start (1 min)": f"{os.getloadavg()[0]:.2f}",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.__version__,
        "servers": f"gunicorn {version('gunicorn')}, uvicorn {version('uvicorn')}; "
        f"{args.workers} worker processes each",
        "load generator": f"locust {version('locust')} (FastHttpUser, one process)",
        "redis-server": redis_client.info("server")["redis_version"],
        "database": database,
    }


@dataclasses.dataclass
class Goal:
    """One goal: what it asks, what this run measured (None: not measured), and whether it holds."""

    name: str
    target: str
    measured: str
    holds: bool | None


def find(results, key):
    return next((levels for config, levels in results.items() if config.key == key), None)


def rate(levels, users):
    level = next((lv for lv in levels or [] if lv.get("users") == users), None)
    return level["requests_per_second"] if level else None


def evaluate(results, args):
    """Return issue 9's load-test goals as this run measured them."""
    goals = []
    for config, levels in results.items():
        failed = [lv for lv in levels if lv.get("errors") or lv.get("server_errors") or "users" not in lv]
        measured = ", ".join(
            f"{lv['users']}: {lv['errors']} / {lv['server_errors']}" for lv in levels if "users" in lv
        )
        goals.append(
            Goal(
                f"{config.label}: 0 errors and 0 responses >= 500 at every level",
                "0 / 0",
                f"errors / >= 500 by users: {measured}",
                not failed and len(levels) == len(args.levels),
            )
        )
    for server, ours_key in (("gunicorn", "gunicorn-ours"), ("uvicorn", "uvicorn-ours-native")):
        ours, cache = find(results, ours_key), find(results, f"{server}-cache")
        ratios = {n: ratio(rate(ours, n), rate(cache, n)) for n in args.levels}
        known = {n: r for n, r in ratios.items() if r is not None}
        goals.append(
            Goal(
                f"{server}: ours >= 1.0× the cache engine's requests/s, at every level",
                "≥ 1.00×",
                ", ".join(f"{n}: {r:.2f}×" for n, r in known.items()) or "–",
                None if not known else min(known.values()) >= 1.0,
            )
        )
    native, fallback = find(results, "uvicorn-ours-native"), find(results, "uvicorn-ours-sync_to_async")
    value = ratio(rate(native, GOAL_LEVEL), rate(fallback, GOAL_LEVEL))
    goals.append(
        Goal(
            f"uvicorn: ours, native async >= {ASYNC_TARGET}× ours through sync_to_async, at {GOAL_LEVEL} users",
            f"≥ {ASYNC_TARGET:.2f}×",
            "–" if value is None else f"{value:.2f}×",
            None if value is None else value >= ASYNC_TARGET,
        )
    )
    return goals


def ratio(a, b):
    return None if a is None or not b else a / b


def mark(holds):
    return {True: "yes", False: "**no**", None: "not measured"}[holds]


def goals_text(goals):
    """Return the goals as lines for the terminal."""
    lines = ["Goals:"]
    for goal in goals:
        sign = {True: "PASS", False: "FAIL", None: "----"}[goal.holds]
        lines.append(f"  {sign}  {goal.name}: {goal.measured} (target {goal.target})")
    held = sum(goal.holds is True for goal in goals)
    lines.append(f"  {held} of {len(goals)} goals hold.")
    return "\n".join(lines)


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value):
    return "–" if value is None else f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def per_request(level, what, scale, digits=0):
    seconds = level.get(f"{what}_cpu_seconds")
    if seconds is None or not level["requests"]:
        return "–"
    return f"{scale * seconds / level['requests']:,.{digits}f}"


def results_table(results):
    rows = []
    for config, levels in results.items():
        for lv in levels:
            if "users" not in lv:
                failure = (lv.get("failure") or lv.get("conductor_error") or "failed").splitlines()[0]
                rows.append([config.server, config.engine_label, "–", f"not measured: {cell(failure)}"])
                continue
            redis_share = lv.get("redis_cpu_seconds", 0) / lv["seconds"]
            rows.append([
                config.server,
                config.engine_label,
                lv["users"],
                f"{lv['requests_per_second']:,.0f}",
                ms(lv["p50_ms"]), ms(lv["p95_ms"]), ms(lv["p99_ms"]),
                lv["errors"],
                lv["server_errors"],
                per_request(lv, "redis", 1e6),
                f"{lv['redis_commands'] / lv['requests']:.1f}" if lv.get("redis_commands") and lv["requests"] else "–",
                f"{100 * redis_share:.1f} %",
                per_request(lv, "server", 1e3, digits=1),
                f"{100 * lv.get('generator_cpu_seconds', 0) / lv['seconds']:.0f} %",
            ])  # fmt: skip
    headers = [
        "server", "engine", "users", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors",
        "≥ 500", "Redis CPU µs/request", "Redis commands/request", "Redis CPU", "server CPU ms/request",
        "generator CPU",
    ]  # fmt: skip
    return table(headers, rows)


def by_request_table(results, users):
    rows = []
    for config, levels in results.items():
        level = next((lv for lv in levels if lv.get("users") == users), None)
        if level is None:
            continue
        found = level["by_request"]
        cells = [
            f"{ms(found[name]['p50_ms'])} / {ms(found[name]['p99_ms'])}" if name in found else "–"
            for name in REQUESTS
        ]
        rows.append([config.server, config.engine_label, *cells])
    return table(["server", "engine", *REQUESTS], rows)


def commands_table(results, users):
    """Return the Redis commands per request at ``users``, by command, for each configuration."""
    found = {}
    for config, levels in results.items():
        level = next((lv for lv in levels if lv.get("users") == users), None)
        if level and level.get("redis_calls") and level["requests"]:
            found[config] = {name: n / level["requests"] for name, n in level["redis_calls"].items()}
    names = sorted({name for calls in found.values() for name in calls})
    if not names:
        return "Not measured."
    rows = [
        [config.server, config.engine_label, *(f"{calls.get(name, 0):.2f}" for name in names)]
        for config, calls in found.items()
    ]
    return table(["server", "engine", *(name.upper() for name in names)], rows)


def errors_section(results):
    lines = []
    for config, levels in results.items():
        for lv in levels:
            for message, count in (lv.get("error_messages") or {}).items():
                lines.append(f"- {config.label}, {users(lv['users'])}: {count} × {cell(message)}")
    return "\n".join(lines) or "None: every request got the answer the flow expects."


def cell(text):
    """Return ``text`` as literal markdown, safe in a table cell."""
    return "`" + text.replace("`", "'").replace("|", "/") + "`"


def users(count):
    return f"{count} user{'' if count == 1 else 's'}"


def chart(written, subject, caption):
    filename = written.get(subject)
    return f"![{caption}](bench/{filename})" if filename else ""


def render(facts, args, results, goals, written):
    """Return the whole report as markdown."""
    machine_lines = "\n".join(f"- {name}: {value}" for name, value in facts.items())
    note = engine_note()
    return "\n".join([
        "# Load test",
        "",
        "The site behind real servers under concurrent users: gunicorn (WSGI) and uvicorn (ASGI), "
        "each with sessiondemo's Redis engine and with Django's cache engine on django-redis, on "
        "loopback, driven by locust. Issue 9, part 4.",
        "",
        "Reproduce with `make loadtest` (that is, `.venv/bin/python bench/loadtest/run.py`; `--help` "
        "for the knobs). The run regenerates this file, the charts `docs/bench/loadtest-*.svg` and "
        "`docs/bench/loadtest-last.json` (every figure). The engine's own benchmark is "
        "[benchmarks.md](benchmarks.md).",
        "",
        *([f"> **{args.note}**", ""] if args.note else []),
        *([f"> Note: {note}", ""] if note else []),
        "## Machine",
        "",
        machine_lines,
        "",
        "## Goals",
        "",
        table(["goal", "measured", "target", "holds"],
              [[g.name, g.measured, g.target, mark(g.holds)] for g in goals]),
        "",
        "## Results",
        "",
        f"Each level: {args.warm_up:g} s of warm-up, then {args.seconds:g} s measured. Requests/s "
        "and latencies count the requests answered as the flow expects in the measured window; errors and responses "
        "≥ 500 count every request of the level, warm-up included. CPU: the CPU time (user + "
        "system) that Redis (`INFO cpu`: `used_cpu_sys` + `used_cpu_user`) and the server's "
        "processes (master and workers) used in the window, per request completed; Redis "
        "commands: the growth of `INFO stats` `total_commands_processed` per request; `Redis CPU` and `generator CPU` as a share of one core (the generator is one process: "
        "near 100 % it, not the server, sets the pace).",
        "",
        results_table(results),
        "",
        chart(written, "throughput", "Requests per second against concurrent users"),
        "",
        chart(written, "latency", "Latency (p50 and p99) against concurrent users"),
        "",
        chart(written, "redis", "Redis CPU time per request"),
        "",
        f"### By request, at {GOAL_LEVEL} users",
        "",
        "p50 / p99 in ms of each request of the flow.",
        "",
        by_request_table(results, GOAL_LEVEL),
        "",
        f"### Redis commands per request, at {GOAL_LEVEL} users",
        "",
        "By command (`INFO commandstats`: a script's own commands are counted under their names "
        "too, beside its `EVALSHA`), per request answered in the window.",
        "",
        commands_table(results, GOAL_LEVEL),
        "",
        "### Errors",
        "",
        errors_section(results),
        "",
        "## How it was measured",
        "",
        method(args),
        "",
    ])  # fmt: skip


def method(args):
    levels = ", ".join(map(str, args.levels))
    keys = ", ".join(f"`{c.key}`" for c in CONFIGS)
    return "\n".join([
        f"- **A virtual user** is a browser with an account of its own (`loadtest-000` …), going "
        f"round this loop as fast as the server answers (no think time), one request at a time: "
        f"GET the login form and POST it (a new session); GET `/profile/` {PROFILE_LOADS} times "
        "(each reads the session); change the session twice; GET \"Your sessions\" "
        "(`/accounts/sessions/`); POST the logout form (the session is deleted). 30 requests, each "
        "counted on its own: no redirect is followed, the flow requests the page a browser would "
        "go to next. Every answer is checked: the status, where a redirect points, and that a "
        "logged-in page names the user logged in; anything else is an error, and the user starts "
        "again from the login form (with the password the site most likely holds). A user's first "
        "loop has a random number of profile loads (0 to 20), so that users who start together "
        "spread over the loop and any window sees its mix of requests.",
        "- **Changing the session**: the password change form (`/accounts/password_change/`, GET "
        "and POST, then its \"done\" page), once to a second password and once back. It is what "
        "the site has that writes to a logged-in session on every engine: Django moves the "
        "session to a new id and stores the new password's hash in it, and the site stores the "
        "time of the password check (and, with our engine, ends the user's other sessions: there "
        "are none). The profile edit form writes no session: the site's messages ride in a "
        "cookie (`sessiondemo.messages.CookieStorage`), never in the session.",
        f"- **Levels**: {levels} users at once, in that order, on one server process tree per "
        f"configuration ({keys}). New users join the ones running, spread over the first half "
        f"of the level's {args.warm_up:g} s warm-up; then {args.seconds:g} s are measured.",
        f"- **Servers**: started by `scripts/serve --server wsgi|asgi --bind 127.0.0.1:PORT "
        f"--workers {args.workers}` (gunicorn with `deploy/gunicorn.conf.py`, uvicorn with "
        "`deploy/uvicorn_server.py`), "
        "`DJANGO_SETTINGS_MODULE=bench.loadtest.settings`, the run's own Redis and database; "
        "ready when `/readyz` answers 200; stopped with SIGTERM after the last level. Their output "
        "is in `var/loadtest/`.",
        "- **Engines**: only `SESSION_ENGINE` differs. Ours is `sessiondemo.sessions.backend`; the "
        "cache engine is `django.contrib.sessions.backends.cache` on the site's own django-redis "
        "alias (`CACHES[\"sessions\"]`: JSON serializer, 1 s timeouts). On uvicorn ours runs twice: "
        "with `SESSION_REDIS_NATIVE_ASYNC` true (its async methods on redis.asyncio) and false "
        "(Django's sync_to_async fallbacks).",
        "- **What the load-test settings change** (`bench/loadtest/settings.py`): MD5 password "
        "hashing, so that a login measures its session and not PBKDF2 (as the test suite and "
        "`make bench` do); `ACCOUNTS_LOGIN_FAILURES_PER_IP` and "
        "`SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE` raised to 1,000,000, since every user comes from "
        "127.0.0.1 and a password check reserves an attempt on its network's budget before it is "
        "verified (at the site's 30, a burst of first logins would get 429); `SECURE_SSL_REDIRECT` "
        "off (plain HTTP on loopback). The per-user session cap stays at 20: a user logs out at "
        "the end of each loop, so it never has more than one live session. The cookies stay "
        "`Secure` and `__Host-`: the generator's cookie jar (`LoopbackCookies` in "
        "`bench/loadtest/locustfile.py`) sends them back over plain HTTP to 127.0.0.1, as "
        "Chromium and Firefox do to a server on loopback.",
        "- **Redis**: a private `redis-server` on a free loopback port, with the README's "
        "`maxmemory-policy noeviction`, no persistence, emptied (`FLUSHALL`) before each "
        "configuration; the throttle counters live there too, as on the site.",
        "- **Database**: the run's own SQLite file in WAL mode (`synchronous=NORMAL`, IMMEDIATE "
        "transactions, a 30 s busy timeout), or a PostgreSQL database when `DATABASE_URL` names "
        "one; every login writes `last_login` and every password change the user.",
        "- **One machine**: the generator, Redis and the server share its cores, so absolute "
        "figures say little about a server of its own; the ratios between configurations, "
        "measured the same way one after the other, are the point.",
    ])  # fmt: skip

