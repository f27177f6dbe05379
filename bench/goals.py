"""
Issue 8's goals, each as this run measured it, against its target.

Ratios are ours over ``cache + django-redis`` (RIVAL) in the same run; every
goal holds when the measured value is at most its target.
"""

import dataclasses

from . import prune

RIVAL = "cache + django-redis"
MIB = 2**20
# "Not growing with unrelated keys": what clearsessions takes beside them over
# what it takes in an empty database, with room for the machine's noise.
NOT_GROWING = 1.25


@dataclasses.dataclass
class Goal:
    """One goal: what is measured, its target, and what this run found (None: not measured)."""

    area: str
    name: str
    unit: str  # "×" (a ratio to RIVAL), "µs", "s", "MiB"
    target: float
    value: float | None
    detail: str = ""

    @property
    def key(self):
        return f"{self.area}: {self.name}"

    @property
    def holds(self):
        return None if self.value is None else self.value <= self.target

    def show(self, value):
        """Return ``value`` in this goal's unit, as text."""
        if value is None:
            return "–"
        if self.unit == "×":
            return f"{value:.2f}×"
        return f"{value:,.1f} {self.unit}" if value < 100 else f"{value:,.0f} {self.unit}"


def evaluate(results, prune_runs):
    """Return every goal, in the issue's order."""
    ours = next(r for r in results if r.engine.is_ours)
    rival = next(r for r in results if r.engine.label == RIVAL)
    return [
        *latency(ours, rival),
        *redis_time(ours),
        *memory(ours, rival),
        *clearsessions(prune_runs),
    ]


def ratio(ours, theirs):
    return None if ours is None or not theirs else ours / theirs


def latency(ours, rival):
    """Ours over RIVAL at the median (and p99 for a read), through the engine API and end to end."""
    rows = [
        ("load", "load p50", "p50_ms"),
        ("load", "load p99", "p99_ms"),
        ("update", "update (load, change a key, save) p50", "p50_ms"),
        ("create", "create p50", "p50_ms"),
        ("delete", "logout (load, flush) p50", "p50_ms"),
    ]
    goals = []
    for op, name, field in rows:
        mine, theirs = getattr(ours.speed[op], field), getattr(rival.speed[op], field)
        detail = f"{mine:.3f} vs {theirs:.3f} ms"
        target = 1.1 if field == "p99_ms" else 1.0
        goals.append(Goal("latency", name, "×", target, ratio(mine, theirs), detail))
    for op, name in (("read", "GET of a page that reads the session, p50"),
                     ("write", "GET of a page that writes the session, p50")):  # fmt: skip
        mine, theirs = ours.web.get(op), rival.web.get(op)
        value = ratio(mine and mine.p50_ms, theirs and theirs.p50_ms)
        detail = f"{mine.p50_ms:.3f} vs {theirs.p50_ms:.3f} ms" if value is not None else ""
        goals.append(Goal("latency", name, "×", 1.0, value, detail))
    return goals


def redis_time(ours):
    """Ours: Redis's execution time per read, update and login (the site's login POST)."""
    login = ours.web.get("login")
    found = [
        ("per read (load)", ours.speed["load"], 5),
        ("per update", ours.speed["update"], 20),
        ("per login (the site's login form, end to end)", login, 40),
    ]
    return [
        Goal(
            "Redis time",
            name,
            "µs",
            target,
            timing.cost.redis_usec if timing else None,
            f"{timing.cost.redis_commands:.0f} commands, {timing.cost.round_trips:.0f} round trip"
            + ("" if timing.cost.round_trips == 1 else "s")
            if timing
            else ours.login_failure or "",
        )
        for name, timing, target in found
    ]


def memory(ours, rival):
    """Ours over RIVAL: Redis's used_memory per logged-in session, on each configuration."""
    goals = []
    for name, attribute, target in (
        ("per session, Redis's default configuration", "memory_default", 1.0),
        ("per session, the README's configuration", "memory", 0.8),
    ):
        mine, theirs = getattr(ours, attribute), getattr(rival, attribute)
        mine = mine and mine.redis_used_memory
        theirs = theirs and theirs.redis_used_memory
        value = ratio(mine, theirs)
        detail = f"{mine:,.0f} vs {theirs:,.0f} B" if value is not None else ""
        goals.append(Goal("memory", name, "×", target, value, detail))
    return goals


def clearsessions(runs):
    """Time and the client's peak memory at a million entries, and what unrelated keys change."""
    backgrounds = sorted({run.unrelated for run in runs})
    goals = []
    for unrelated in backgrounds:
        found = prune.half_stale(runs, unrelated)
        full = found[-1]
        where = "empty database"
        if unrelated:
            where = f"beside {unrelated / 1e6:g} million unrelated keys"
        seconds = full.seconds * 1_000_000 / full.entries
        detail = f"{full.seconds:.2f} s at {full.entries:,} entries, scaled linearly"
        goals.append(Goal("clearsessions", f"seconds per million entries, {where}", "s", 5, seconds,
                          detail))  # fmt: skip
        traced = [(r.entries, r.peak_bytes / MIB) for r in found if r.peak_bytes is not None]
        sizes = " / ".join(f"{entries:,}" for entries, _ in traced)
        goals.append(Goal("clearsessions", f"client memory per million entries, {where}", "MiB", 50,
                          prune.at_a_million(traced) if traced else None,
                          f"a line through {sizes} entries"))  # fmt: skip
    if len(backgrounds) > 1:
        empty = prune.half_stale(runs, 0)[-1]
        crowded = prune.half_stale(runs, backgrounds[-1])[-1]
        detail = f"{crowded.seconds:.2f} vs {empty.seconds:.2f} s at {empty.entries:,} entries"
        name = "time beside unrelated keys, over an empty database"
        goals.append(Goal("clearsessions", name, "×", NOT_GROWING, crowded.seconds / empty.seconds,
                          detail))  # fmt: skip
        if empty.peak_bytes and crowded.peak_bytes is not None:
            detail = f"{crowded.peak_bytes / MIB:.1f} vs {empty.peak_bytes / MIB:.1f} MiB"
            name = "client memory beside unrelated keys, over an empty database"
            value = crowded.peak_bytes / empty.peak_bytes
            goals.append(Goal("clearsessions", name, "×", NOT_GROWING, value, detail))
    return goals
