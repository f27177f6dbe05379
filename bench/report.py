"""Turn the measurements into markdown: the sections, their tables and charts, what they say."""

import dataclasses

from . import interpret, method, tables
from .durable import durable_table


@dataclasses.dataclass
class EngineResult:
    """Everything measured for one engine."""

    engine: object
    speed: dict | None
    memory: object | None  # on the README's Redis configuration
    lost: object
    memory_default: object | None = None  # on Redis's default configuration
    web: dict = dataclasses.field(default_factory=dict)  # through the site, by operation
    login_failure: str | None = None  # why the site's login fails on this engine


@dataclasses.dataclass
class Run:
    """What one run measured, and what the report needs beside it."""

    facts: dict
    settings: dict
    results: list
    prune_runs: list
    profiles: list
    goals: list
    previous: dict | None  # the run before, from history.load()
    charts: dict  # chart files by subject, relative to the report
    durable: dict | None = None  # durable.measure_durable_logins()


def chart(run, subject, caption):
    filename = run.charts.get(subject)
    return f"![{caption}](bench/{filename})" if filename else ""


def render(run):
    """Return the whole report as markdown."""
    settings, results = run.settings, run.results
    machine = "\n".join(f"- {name}: {value}" for name, value in run.facts.items())
    web_speed, web_cost = tables.web_tables(results)
    return "\n".join([
        "# Session engine benchmarks",
        "",
        "sessiondemo's Redis engine against Django's built-in session engines, measured in one",
        "run on one machine, with one private `redis-server` for every Redis-backed engine.",
        "",
        "Reproduce with `make bench` (that is, `.venv/bin/python bench/run.py`; `--help` for the",
        "knobs). The run regenerates this file, the charts in `docs/bench/` and",
        "`docs/bench/last.json` (this run's goal figures, the next run's \"before\").",
        "The site under concurrent users behind gunicorn and uvicorn: [loadtest.md](loadtest.md) (`make loadtest`).",
        "",
        "## Machine",
        "",
        machine,
        "",
        "## Issue 8's goals",
        "",
        "Each goal as this run measured it; ratios are ours over `cache + django-redis` in this "
        "run. How each is measured: [below](#how-the-goals-are-measured).",
        "",
        tables.goals_table(run.goals),
        "",
        "## Before and after",
        "",
        before_and_after(run),
        "",
        "## How it was measured",
        "",
        method.general(any(r.engine.db_alias == "postgres" for r in results)),
        "",
        "### How the goals are measured",
        "",
        method.goals(settings),
        "",
        "## Speed",
        "",
        f"n operations of each kind ({settings['sessions']:,}; {settings['db_sessions']:,} for "
        "engines that write to a database, which are slower), one thread, "
        f"after {settings['warm_up']} of each as warm-up. Cells: operations per second · "
        "p50 / p99 latency in ms.",
        "",
        tables.speed_table(results),
        "",
        chart(run, "latency", "Latency distribution per engine and operation"),
        "",
        "## Through the site",
        "",
        method.web_text(settings),
        "",
        web_speed,
        "",
        "Cost per request, as in the next section; `SQL`: statements sent to SQLite (loading "
        "the user, and at login the password check and `last_login`).",
        "",
        web_cost,
        "",
        "## Cost per operation",
        "",
        "Averages per operation over the same runs. `rt`: Redis round trips (counted on the "
        "client's connections); `cmd`: commands Redis executed, including those inside Lua "
        "scripts (`INFO commandstats`); `µs`: Redis's execution time of the commands the client "
        "sent (a script's time includes the commands it runs, which are not counted again); "
        "`SQL`: statements sent to the database (Django's `execute_wrapper`; transaction control "
        "not included).",
        "",
        tables.cost_table(results),
        "",
        "## Redis time per operation",
        "",
        "Cells: Redis's execution time (`INFO commandstats`, as above) · the CPU time of "
        "Redis's main thread (`INFO cpu`: also reading requests, writing replies and its own "
        "chores), in µs per operation. The last two columns are 10⁶ over each figure for a load: "
        "the reads per second one Redis core could serve if that were all it did.",
        "",
        tables.redis_time_table(results),
        "",
        chart(run, "redis-time", "Redis time per operation"),
        "",
        "## Memory",
        "",
        "Logged-in sessions of distinct users created into empty stores (fewer for engines that "
        "write to a database: the per-session figures settle long before), then measured, on "
        "the README's Redis configuration (`maxmemory-policy noeviction`, Redis's default, "
        "as the benchmark's Redis runs) and, for ours and `cache + django-redis`, again on Redis's default for the "
        f"same settings, set with `CONFIG SET` ({method.config_text(settings)}; the other "
        "engines store strings, which these settings leave alone). `used_memory` (less client "
        "buffers) includes "
        "Redis's own bookkeeping (the key table, expiry entries); `MEMORY USAGE` counts each "
        "key and value.",
        "",
        tables.memory_table(results),
        "",
        chart(run, "memory", "Bytes per session"),
        "",
        "## Lost updates",
        "",
        method.lost_text(results[0].lost),
        "",
        tables.lost_table(results),
        "",
        "## clearsessions (ours)",
        "",
        method.prune_text(settings),
        "",
        tables.prune_table(run.prune_runs),
        "",
        chart(run, "clearsessions", "clearsessions time against index size"),
        "",
        "## Durable logins (ours)",
        "",
        "A login that waits for one replica (`SESSION_REDIS_MIN_REPLICAS = 1`) sends `WAIT` in",
        "its write's round trip; a replica of the benchmark's Redis, on the same machine, answers.",
        "",
        durable_table(run.durable),
        "",
        "## Profile of our engine",
        "",
        method.profile_text(),
        "",
        "\n\n".join(tables.profile_section(profile) for profile in run.profiles),
        "",
        "## What the numbers say",
        "",
        interpret.summary(results, run.prune_runs),
        "",
    ])  # fmt: skip


def before_and_after(run):
    if not run.previous:
        return (
            "No previous run is recorded (`docs/bench/last.json`); the next run shows this one "
            "here."
        )
    return "\n".join([
        "The previous run's figures (`docs/bench/last.json`, written by that run) beside this "
        "run's. Both are runs of this benchmark on whatever machine ran them: compare their "
        "ratios, which are measured side by side, more than their absolute figures.",
        "",
        tables.history_table(run.goals, run.previous),
    ])  # fmt: skip
