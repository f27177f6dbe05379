#!/usr/bin/env python
"""
Benchmark sessiondemo's Redis session engine against Django's built-in engines.

Starts a private redis-server and temporary databases, measures every engine
the same way, prints the report as markdown and writes it to
docs/benchmarks.md. ``make bench`` runs it; ``--help`` lists the knobs.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django  # noqa: E402

from bench import environment  # noqa: E402

OUTPUT = ROOT / "docs" / "benchmarks.md"

# (flag, default, help): every knob is a count.
OPTIONS = [
    ("--sessions", 2000, "timed operations of each kind per Redis engine"),
    ("--db-sessions", 500, "timed operations of each kind per engine that writes to a database"),
    ("--memory-sessions", 10_000, "sessions stored for the memory figures, per Redis engine"),
    ("--db-memory-sessions", 2000, "the same, per engine that writes to a database"),
    ("--threads", 8, "concurrent writers in the lost-update test"),
    ("--rounds", 50, "rounds per lost-update repetition"),
    ("--repeats", 5, "lost-update repetitions"),
    ("--prune-users", 10_000, "users, with 10 index entries each, for clearsessions"),
    ("--prune-repeats", 3, "clearsessions repetitions (the median is reported)"),
]


def parse_args():
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    for flag, default, help_text in OPTIONS:
        parser.add_argument(flag, type=int, default=default, help=f"{help_text} ({default})")
    parser.add_argument(
        "--output", default=str(OUTPUT), help="where to write the report, '-' for nowhere"
    )
    return parser.parse_args()


def progress(message):
    """Say what the run is doing, on stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def migrate(with_postgres):
    """Create the site's tables in SQLite, and the session table in PostgreSQL too."""
    from django.core.management import call_command

    call_command("migrate", database="default", verbosity=0)
    if with_postgres:
        call_command("migrate", "sessions", database="postgres", verbosity=0)


def measure_engine(engine, speed, redis_client, args):
    """Measure one engine's memory and lost updates; return its EngineResult with ``speed``."""
    from bench.measure import measure_lost_updates
    from bench.memory import measure_memory, reset_stores
    from bench.report import EngineResult

    started = time.perf_counter()
    with engine.active() as store:
        memory = None
        if engine.speed:
            count = args.db_memory_sessions if engine.db_alias else args.memory_sessions
            memory = measure_memory(engine, store, count, redis_client)
        lost = measure_lost_updates(store, args.threads, args.rounds, args.repeats)
        reset_stores(engine, redis_client)
    progress(f"  {engine.label.strip('*')}: {time.perf_counter() - started:.1f} s")
    return EngineResult(engine, speed, memory, lost)


def measure_all(redis_client, with_postgres, args):
    """Measure every engine, then clearsessions for ours; return both."""
    # Imported here, once the settings can be read: they name the private
    # Redis and the temporary databases, which exist only from now on.
    from bench.engines import engines
    from bench.measure import measure_speed
    from bench.prune import measure_clearsessions

    found = engines(with_postgres)
    timed = [engine for engine in found if engine.speed]
    counts = {e: args.db_sessions if e.db_alias else args.sessions for e in timed}
    started = time.perf_counter()
    speeds = measure_speed(timed, counts, redis_client)
    progress(f"  speed, engines taking turns: {time.perf_counter() - started:.1f} s")
    results = [measure_engine(engine, speeds.get(engine), redis_client, args) for engine in found]
    ours = next(r.engine for r in results if r.engine.is_ours)
    started = time.perf_counter()
    with ours.active() as store:
        prunes = measure_clearsessions(store, redis_client, args.prune_users, args.prune_repeats)
    progress(f"  clearsessions: {time.perf_counter() - started:.1f} s")
    return results, prunes


def main():
    args = parse_args()
    started = time.perf_counter()
    with environment.workspace() as (server, postgres):
        django.setup()
        from bench import measure, report

        migrate(with_postgres=bool(postgres.url))
        redis_client = server.client()
        facts = environment.machine(redis_client, postgres)
        progress(f"Redis on {server.url}; PostgreSQL: {postgres.note}")
        results, prunes = measure_all(redis_client, bool(postgres.url), args)
        redis_client.close()
    settings = vars(args) | {"warm_up": measure.WARM_UP}
    markdown = report.render(facts, settings, results, prunes)
    print(markdown)
    if args.output != "-":
        Path(args.output).write_text(markdown)
        progress(f"wrote {args.output}")
    progress(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
