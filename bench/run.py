#!/usr/bin/env python
"""
Benchmark sessiondemo's Redis session engine against Django's built-in engines.

Starts a private redis-server and temporary databases, measures every engine
the same way, prints the report as markdown and writes it to
docs/benchmarks.md, with its charts and this run's goal figures in docs/bench/.
``make bench`` runs it; ``--help`` lists the knobs.
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
ASSETS = "bench"  # beside the report: charts and last.json
HISTORY = "last.json"

# (flag, default, help): every knob is a count.
OPTIONS = [
    ("--sessions", 5000, "timed operations of each kind per Redis engine"),
    ("--db-sessions", 500, "timed operations of each kind per engine that writes to a database"),
    ("--web-requests", 2000, "timed GETs of each kind per engine through the site"),
    ("--web-logins", 300, "timed logins per engine through the site"),
    ("--memory-sessions", 10_000, "sessions stored for the memory figures, per Redis engine"),
    ("--db-memory-sessions", 2000, "the same, per engine that writes to a database"),
    ("--threads", 8, "concurrent writers in the lost-update test"),
    ("--rounds", 50, "rounds per lost-update repetition"),
    ("--repeats", 5, "lost-update repetitions"),
    ("--profile-ops", 2000, "loads and updates of ours profiled"),
    ("--prune-users", 10_000, "users, with 10 index entries each, for clearsessions"),
    ("--prune-repeats", 3, "clearsessions repetitions at the full size (the median is reported)"),
    ("--unrelated-keys", 5_000_000, "unrelated keys beside the indexes, for clearsessions"),
    ("--durable-logins", 1000, "new logged-in sessions of ours per setting, with and without WAIT"),
]


def parse_args():
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    for flag, default, help_text in OPTIONS:
        parser.add_argument(flag, type=int, default=default, help=f"{help_text} ({default})")
    parser.add_argument(
        "--output",
        default=str(OUTPUT),
        help="where to write the report ('-' for nowhere: no charts, no last.json either)",
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


def measure_engine(engine, result, redis_client, args, configs):
    """Add one engine's memory (on Redis's default configuration too, if asked) and lost updates."""
    from bench.measure import measure_lost_updates
    from bench.memory import measure_memory, reset_stores

    started = time.perf_counter()
    with engine.active() as store:
        if engine.speed:
            count = args.db_memory_sessions if engine.db_alias else args.memory_sessions
            result.memory = measure_memory(engine, store, count, redis_client)
            if engine.default_config:
                with environment.redis_config(redis_client, configs["default"]):
                    result.memory_default = measure_memory(engine, store, count, redis_client)
        result.lost = measure_lost_updates(store, args.threads, args.rounds, args.repeats)
        reset_stores(engine, redis_client)
    progress(f"  {engine.label.strip('*')}: {time.perf_counter() - started:.1f} s")


def measure_all(server, redis_client, with_postgres, args, configs):
    """Measure every engine, then profile ours and time its clearsessions; return all three."""
    # Imported here, once the settings can be read: they name the private
    # Redis and the temporary databases, which exist only from now on.
    from bench.durable import measure_durable_logins
    from bench.endtoend import measure_web
    from bench.engines import engines
    from bench.measure import measure_speed
    from bench.profiling import profile_engine
    from bench.prune import measure_clearsessions
    from bench.report import EngineResult

    found = engines(with_postgres)
    timed = [engine for engine in found if engine.speed]
    counts = {e: args.db_sessions if e.db_alias else args.sessions for e in timed}
    started = time.perf_counter()
    speeds = measure_speed(timed, counts, redis_client)
    progress(f"  speed, engines taking turns: {time.perf_counter() - started:.1f} s")
    results = {engine: EngineResult(engine, speeds.get(engine), None, None) for engine in found}

    started = time.perf_counter()
    sites = [engine for engine in timed if engine.uses_redis and not engine.db_alias]
    progress("  through the site, engines taking turns:")
    webs, failures = measure_web(sites, args.web_requests, args.web_logins, redis_client, progress)
    for engine in sites:
        results[engine].web, results[engine].login_failure = webs[engine], failures[engine]
    redis_client.flushall()
    progress(f"  through the site: {time.perf_counter() - started:.1f} s")

    for engine, result in results.items():
        measure_engine(engine, result, redis_client, args, configs)

    ours = next(engine for engine in found if engine.is_ours)
    with ours.active() as store:
        started = time.perf_counter()
        profiles = profile_engine(store, args.profile_ops)
        progress(f"  profile: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        progress("  clearsessions:")
        prunes = measure_clearsessions(
            store, redis_client, args.prune_users, args.prune_repeats, args.unrelated_keys, progress
        )
        progress(f"  clearsessions: {time.perf_counter() - started:.1f} s")
        redis_client.flushall()
        durable = measure_durable_logins(store, server, args.durable_logins, progress)
    return list(results.values()), profiles, prunes, durable


def main():
    args = parse_args()
    started = time.perf_counter()
    output = None if args.output == "-" else Path(args.output)
    assets = (output.parent if output else OUTPUT.parent) / ASSETS
    configs = {"recommended": environment.recommended_config()}
    # Redis's own defaults for those, and for what decides how compact an index bucket is.
    configs["default"] = environment.default_config([*configs["recommended"], *environment.HASH_SETTINGS])
    with environment.workspace() as (server, postgres):
        django.setup()
        from bench import charts, endtoend, goals, history, measure, report

        migrate(with_postgres=bool(postgres.url))
        redis_client = server.client()
        facts = environment.machine(redis_client, postgres)
        progress(f"Redis on {server.url}; PostgreSQL: {postgres.note}")
        results, profiles, prunes, durable = measure_all(server, redis_client, bool(postgres.url), args, configs)
        redis_client.close()
    settings = vars(args) | {
        "warm_up": measure.WARM_UP,
        "web_warm_up": endtoend.WARM_UP,
        "default_config": configs["default"],
    }
    found_goals = goals.evaluate(results, prunes)
    previous = history.load(assets / HISTORY)
    written = charts.write_all(assets, results, prunes) if output else {}
    run = report.Run(facts, settings, results, prunes, profiles, found_goals, previous, written, durable)
    markdown = report.render(run)
    print(markdown)
    if output:
        output.write_text(markdown)
        history.save(assets / HISTORY, facts, found_goals)
        progress(f"wrote {output}, and {', '.join(written.values())} and {HISTORY} in {assets}")
    progress(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
