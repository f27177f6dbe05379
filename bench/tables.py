"""The report's tables, as markdown, one function per table."""

from . import goals as goal_module
from .endtoend import OPERATIONS as WEB_OPERATIONS
from .measure import OPERATIONS


def table(headers, rows):
    """Return a markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def optional(value, fmt):
    return "–" if value is None else format(value, fmt)


def speed_cell(timing):
    if timing is None:
        return "–"
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


def web_tables(results):
    """Return the end-to-end speed table and its cost table."""
    found = [r for r in results if r.web]
    speed, cost = [], []
    for r in found:
        failure = f"fails: {r.login_failure}" if r.login_failure else None
        cells = [speed_cell(r.web.get(op)) for op in WEB_OPERATIONS]
        costs = [web_cost_cell(r.web.get(op)) for op in WEB_OPERATIONS]
        if failure:
            cells[-1] = costs[-1] = failure
        speed.append([r.engine.label, f"{r.web['read'].count:,}", *cells])
        cost.append([r.engine.label, *costs])
    headers = ["GET, reads the session", "GET, writes the session", "login form POST"]
    return table(["engine", "n", *headers], speed), table(["engine", *headers], cost)


def web_cost_cell(timing):
    if timing is None:
        return "–"
    cost = timing.cost
    return (
        f"{cost.round_trips:g} rt · {cost.redis_commands:g} cmd · {cost.redis_usec:.0f} µs"
        f" + {cost.sql_statements:g} SQL"
    )


def redis_time_table(results):
    """Redis time per operation (execution · main-thread CPU), and reads one core could serve."""
    columns = [("speed", op) for op in OPERATIONS] + [("web", op) for op in WEB_OPERATIONS]
    rows = []
    for r in results:
        if not (r.speed and r.engine.uses_redis):
            continue
        cells = []
        for kind, op in columns:
            timing = (getattr(r, kind) or {}).get(op)
            cost = timing.cost if timing else None
            cells.append(f"{cost.redis_usec:.1f} · {cost.redis_cpu_usec:.0f}" if cost else "–")
        load = r.speed["load"].cost
        rows.append([
            r.engine.label,
            *cells,
            f"{1e6 / load.redis_usec:,.0f}" if load.redis_usec else "–",
            f"{1e6 / load.redis_cpu_usec:,.0f}" if load.redis_cpu_usec > 0 else "–",
        ])  # fmt: skip
    headers = ["engine", "create", "load", "update", "delete (logout)", "GET, reads (site)",
               "GET, writes (site)", "login (site)", "reads/s one core serves (execution)",
               "reads/s one core serves (CPU)"]  # fmt: skip
    return table(headers, rows)


def memory_table(results):
    rows = []
    for r in results:
        m, d = r.memory, r.memory_default
        if m is None:
            continue
        rows.append([
            r.engine.label,
            f"{m.sessions:,}",
            optional(m.redis_used_memory, ",.0f"),
            optional(d and d.redis_used_memory, ",.0f"),
            optional(m.redis_memory_usage, ",.0f"),
            optional(m.redis_keys, "g"),
            m.redis_layout or "–",
            (d and d.redis_layout) or "–",
            optional(m.table_bytes, ",.0f"),
        ])  # fmt: skip
    headers = [
        "engine",
        "sessions",
        "`used_memory` Δ / session (B), README's config",
        "`used_memory` Δ / session (B), Redis's default config",
        "`MEMORY USAGE` / session (B), README's config",
        "Redis keys / session",
        "keys (type/encoding: average `MEMORY USAGE`), README's config",
        "keys, Redis's default config",
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
        peak = run.peak_bytes
        rows.append([
            run.label,
            f"{run.unrelated:,}",
            f"{run.entries:,}",
            f"{run.pruned:,}",
            f"{run.indexes:,}",
            f"{run.seconds:.2f} s",
            f"{cost.round_trips:,}",
            f"{cost.redis_commands:,}",
            f"{cost.redis_usec / 1000:,.0f} ms",
            "–" if peak is None else f"{peak / goal_module.MIB:.1f} MiB",
        ])  # fmt: skip
    headers = [
        "run",
        "unrelated keys",
        "index entries",
        "pruned",
        "user indexes",
        "wall time",
        "round trips",
        "Redis commands",
        "Redis busy",
        "client peak (tracemalloc, a run of its own)",
    ]
    return table(headers, rows)


def holds_cell(goal):
    return {True: "yes", False: "**no**", None: "not measured"}[goal.holds]


def goals_table(goals):
    rows = [
        [goal.area, goal.name, f"≤ {goal.show(goal.target)}", goal.show(goal.value), goal.detail,
         holds_cell(goal)]
        for goal in goals
    ]  # fmt: skip
    return table(["area", "goal (ours)", "target", "measured", "from", "holds"], rows)


def history_table(goals, previous):
    before = previous.get("goals", {})
    rows = []
    for goal in goals:
        old = before.get(goal.key)
        change = "–"
        if old is not None and goal.value is not None and old:
            change = f"{(goal.value / old - 1) * 100:+.0f}%"
        rows.append([goal.key, f"≤ {goal.show(goal.target)}", goal.show(old), goal.show(goal.value),
                     change, holds_cell(goal)])  # fmt: skip
    before = f"before ({previous.get('commit')}, {previous.get('date')})"
    headers = ["goal (ours)", "target", before, "now", "change", "holds now"]
    return table(headers, rows)


def profile_section(profile):
    """Return one operation's profile: the call tree in a code block, and own times in a table."""
    own = table(
        ["function (own lines)", "where", "µs per operation", "share"],
        [
            [f"`{name}`", f"`{place}`", f"{us:.0f}", f"{share:.0%}"]
            for name, place, us, share in profile.own
        ],  # fmt: skip
    )
    return "\n".join([
        f"### {profile.operation}",
        "",
        f"{profile.count:,} operations: {profile.plain_us:.0f} µs each without the profiler, "
        f"{profile.profiled_us:.0f} µs with it.",
        "",
        "```",
        "share   µs/op  call (cumulative)",
        *profile.tree,
        "```",
        "",
        own,
    ])  # fmt: skip
