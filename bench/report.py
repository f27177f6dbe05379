"""Turn the measurements into markdown: the tables, how they were taken, what they say."""

import dataclasses

from . import interpret
from .measure import OPERATIONS


@dataclasses.dataclass
class EngineResult:
    """Everything measured for one engine."""

    engine: object
    speed: dict | None
    memory: object | None
    lost: object


def table(headers, rows):
    """Return a markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def speed_cell(timing):
    return f"{timing.ops_per_second:,.0f}/s · {timing.p50_ms:.3f} / {timing.p99_ms:.3f}"


def cost_cell(engine, timing):
    parts = []
    cost = timing.cost
    if engine.uses_redis:
        parts.append(
            f"{cost.round_trips:g} rt · {cost.redis_commands:g} cmd · {cost.redis_usec:.0f} µs"
        )
    if engine.db_alias:
        parts.append(f"{cost.sql_statements:g} SQL")
    return " + ".join(parts)


def speed_table(results):
    rows = [
        [r.engine.label, f"{r.speed['create'].count:,}", *map(speed_cell, r.speed.values())]
        for r in results
        if r.speed
    ]
    return table(["engine", "n", "create", "load", "update", "delete (logout)"], rows)


def cost_table(results):
    rows = [
        [r.engine.label, *(cost_cell(r.engine, r.speed[op]) for op in OPERATIONS)]
        for r in results
        if r.speed
    ]
    return table(["engine", "create", "load", "update", "delete (logout)"], rows)


def optional(value, fmt):
    return "–" if value is None else format(value, fmt)


def memory_table(results):
    rows = []
    for r in results:
        m = r.memory
        if m is None:
            continue
        rows.append([
            r.engine.label,
            f"{m.sessions:,}",
            optional(m.redis_used_memory, ",.0f"),
            optional(m.redis_memory_usage, ",.0f"),
            optional(m.redis_keys, "g"),
            m.redis_layout or "–",
            optional(m.table_bytes, ",.0f"),
        ])  # fmt: skip
    headers = [
        "engine",
        "sessions",
        "Redis `used_memory` Δ / session (B)",
        "`MEMORY USAGE` / session (B)",
        "Redis keys / session",
        "keys (type/encoding: average `MEMORY USAGE`)",
        "DB table + indexes / session (B)",
    ]
    return table(headers, rows)


def lost_table(results):
    first = results[0].lost
    rows = [
        [
            r.engine.label,
            f"{r.lost.lost_at_end:,} of {r.lost.threads * r.lost.repeats:,}",
            f"{r.lost.lost_any_round:,} of {r.lost.threads * r.lost.rounds * r.lost.repeats:,}",
            len(r.lost.errors),
        ]
        for r in results
    ]
    headers = [
        f"engine ({first.threads} threads × {first.rounds} rounds × {first.repeats})",
        "keys lost at the end",
        "writes lost, checked after every round",
        "failed saves",
    ]
    return table(headers, rows)


def prune_table(runs):
    rows = []
    for run in runs:
        cost = run.cost
        rows.append([
            run.label,
            f"{run.entries:,}",
            f"{run.pruned:,}",
            f"{run.indexes:,}",
            f"{run.seconds:.2f} s",
            f"{cost.round_trips:,}",
            f"{cost.redis_commands:,}",
            f"{cost.redis_usec / 1000:,.0f} ms",
            f"{run.per_million(run.seconds):.1f} s · {run.per_million(cost.round_trips):,.0f} rt"
            f" · {run.per_million(cost.redis_usec) / 1e6:.1f} s",
        ])  # fmt: skip
    headers = [
        "run",
        "index entries",
        "pruned",
        "user indexes",
        "wall time",
        "round trips",
        "Redis commands",
        "Redis busy",
        "per million entries: wall · round trips · Redis busy",
    ]
    return table(headers, rows)


def render(facts, settings, results, prune_runs):
    """Return the whole report as markdown."""
    machine = "\n".join(f"- {name}: {value}" for name, value in facts.items())
    return "\n".join([
        "# Session engine benchmarks",
        "",
        "sessiondemo's Redis engine against Django's built-in session engines, measured in one",
        "run on one machine, with one private `redis-server` for every Redis-backed engine.",
        "",
        "Reproduce with `make bench` (that is, `.venv/bin/python bench/run.py`; `--help` for the",
        "knobs). The run regenerates this file.",
        "",
        "## Machine",
        "",
        machine,
        "",
        "## How it was measured",
        "",
        method(any(r.engine.db_alias == "postgres" for r in results)),
        "",
        "## Speed",
        "",
        f"n operations of each kind ({settings['sessions']:,}; {settings['db_sessions']:,} for "
        "engines that write to a database, which are slower), one thread, "
        f"after {settings['warm_up']} of each as warm-up. Cells: operations per second · "
        "p50 / p99 latency in ms.",
        "",
        speed_table(results),
        "",
        "## Cost per operation",
        "",
        "Averages per operation over the same runs. `rt`: Redis round trips (counted on the "
        "client's connections); `cmd`: commands Redis executed, including those inside Lua "
        "scripts (`INFO commandstats`); `µs`: time Redis spent executing them; `SQL`: statements "
        "sent to the database (Django's `execute_wrapper`; transaction control not included).",
        "",
        cost_table(results),
        "",
        "## Memory",
        "",
        "Logged-in sessions of distinct users created into empty stores (fewer for engines that "
        "write to a database: the per-session figures settle long before), then measured. "
        "`used_memory` (less client buffers) includes Redis's own bookkeeping (the key table, "
        "expiry entries); "
        "`MEMORY USAGE` counts each key and value.",
        "",
        memory_table(results),
        "",
        "## Lost updates",
        "",
        lost_text(results[0].lost),
        "",
        lost_table(results),
        "",
        "## clearsessions (ours)",
        "",
        prune_text(settings),
        "",
        prune_table(prune_runs),
        "",
        "## What the numbers say",
        "",
        interpret.summary(results, prune_runs),
        "",
    ])  # fmt: skip


def method(with_postgres):
    postgres = (
        "; PostgreSQL is a temporary database on the local server, created and dropped by the "
        "run, with `synchronous_commit=off`"
        if with_postgres
        else ""
    )
    return "\n".join([
        "- Payload: a logged-in session, Django's `_auth_user_id`, `_auth_user_backend` and "
        "`_auth_user_hash` plus five small app keys (348 bytes as JSON); each session belongs to "
        "its own user.",
        "- create: a new `SessionStore`, the payload, `save()`. load: `SessionStore(key)` and read "
        "one key (a read-only request). update: load, change one key, `save()`. delete: load, "
        "then `flush()` (a logout).",
        "- Each operation is timed alone with `time.perf_counter()`; ops/s is operations over "
        "the summed latencies. The engines take turns in 10 blocks, in a new random order each "
        "time (the Redis engines first, then those that write to a database), so that a slow "
        "spell of the machine falls on all of them alike.",
        "- Redis engines share one `redis-server` started for the run on a free loopback TCP "
        "port, without persistence, flushed before each engine's memory and lost-update "
        "measurements. Their pools all use the project's round-trip-counting connection class "
        "and 1 s socket timeouts, so that overhead is the same for each.",
        "- `cache + django-redis` uses django-redis's default (pickle) serializer, as its README "
        "recommends for sessions; `cache + Django RedisCache` is Django's own Redis cache "
        "backend (pickle too). Ours stores JSON.",
        "- No store waits for the disk on a write, since Redis here runs without persistence: "
        "SQLite is a file in a temporary directory in WAL mode with `synchronous=NORMAL` and "
        f"`IMMEDIATE` transactions{postgres}. With their defaults (a sync per commit) the "
        "databases' writes would also wait for the disk.",
    ])  # fmt: skip


def lost_text(lost):
    return (
        f"{lost.threads} threads share one session. In each of {lost.rounds} rounds they meet "
        "at a barrier, then each opens its own `SessionStore` on that session, sets its own "
        f"key (`t0`…`t{lost.threads - 1}`) to the round number and saves; after every round "
        f"the session is read back. Repeated {lost.repeats} times on fresh sessions. A key that "
        "is missing or holds an older round is a lost write. For `signed_cookies` the session "
        "is the cookie, and the browser keeps the cookie of whichever response came last."
    )


def prune_text(settings):
    users = settings["prune_users"]
    return (
        f"{users:,} users with 10 index entries each ({users * 10:,} entries): 5 live sessions, "
        "3 entries whose score says expired, 2 whose session is already gone (deleted or "
        "expired). `SessionStore.clear_expired()`, what `manage.py clearsessions` calls, prunes "
        "them; then it runs again with nothing left to prune, as the next cron run would. "
        f"The median of {settings['prune_repeats']} repetitions on fresh data. "
        "Django's `cache` engines have nothing to prune (Redis expires their keys), and `db` "
        "runs one `DELETE … WHERE expire_date < now`."
    )
