#!/usr/bin/env python
"""
Load-test the site behind gunicorn and uvicorn, with our session engine and Django's cache engine.

Starts a private redis-server and a SQLite database of its own (PostgreSQL
instead when DATABASE_URL names one), creates one account per virtual user,
then for each server and engine (servers.CONFIGS) starts the site with
scripts/serve on a free loopback port and drives it with locust
(locustfile.py) at each level of concurrency. Writes docs/loadtest.md, its
charts (docs/bench/loadtest-*.svg) and figures (docs/bench/loadtest-last.json),
and prints the goals. ``make loadtest`` runs it; ``--help`` lists the knobs.
"""

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

# What bench.environment.postgres_database() reads when it closes Django's connections.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.loadtest.settings")

from bench.environment import postgres_database, shallow_idle  # noqa: E402
from bench.loadtest import servers  # noqa: E402
from sessiondemo.testing.redis_server import RedisServer, free_port  # noqa: E402

OUTPUT = ROOT / "docs" / "loadtest.md"
ASSETS = "bench"  # beside the report
FIGURES = "loadtest-last.json"
WORKDIR = ROOT / "var" / "loadtest"
LOCUST = Path(sys.executable).parent / "locust"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SECRET_KEY = "loadtest-secret-key-not-for-production-" + "l0ad" * 8
SETTINGS = "bench.loadtest.settings"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,64", help="virtual users at once, in turn (1,8,32,64)")
    parser.add_argument("--warm-up", type=float, default=3.0, help="seconds at each level before measuring (3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds measured at each level (10)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated configurations to run, of: " + ", ".join(c.key for c in servers.CONFIGS),
    )
    parser.add_argument(
        "--output",
        default=str(OUTPUT),
        help="where to write the report ('-': nowhere, and no charts or figures either)",
    )
    parser.add_argument("--workdir", default=str(WORKDIR), help="the run's database, Redis and logs (var/loadtest)")
    parser.add_argument("--note", default="", help="a line at the top of the report, e.g. 'Trial run: ...'")
    args = parser.parse_args(argv)
    args.levels = [int(n) for n in args.levels.split(",")]
    wanted = {key.strip() for key in args.only.split(",") if key.strip()}
    unknown = wanted - {c.key for c in servers.CONFIGS}
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    args.configs = [c for c in servers.CONFIGS if not wanted or c.key in wanted]
    return args


def progress(message):
    """Say what the run is doing, on stderr."""
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def database(workdir):
    """
    Yield the run's database URL and a word on it.

    A temporary PostgreSQL database (bench.environment.postgres_database, dropped
    after) if DATABASE_URL names a PostgreSQL server that answers, else a new
    SQLite file in ``workdir``.
    """
    sqlite = f"sqlite:///{workdir / 'db.sqlite3'}"
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        yield sqlite, f"SQLite {sqlite3.sqlite_version} (WAL, the run's own file)"
        return
    with postgres_database() as postgres:
        if postgres.url:
            yield postgres.url, f"PostgreSQL, {postgres.note}"
        else:
            yield sqlite, f"SQLite {sqlite3.sqlite_version} (WAL, the run's own file; PostgreSQL {postgres.note})"


def prepare_database(environ, users):
    """Migrate the run's database and create ``users`` accounts, in a process of their own."""
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from bench.loadtest import accounts\n"
        "call_command('migrate', verbosity=0)\n"
        f"accounts.create({users})\n"
    )
    run_django(environ, script)


def reset_passwords(environ):
    """Give every load-test account its first password back (a stopped user may have left the second)."""
    run_django(environ, "import django; django.setup()\nfrom bench.loadtest import accounts\naccounts.reset()\n")


def run_django(environ, script):
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, check=True, timeout=120)


def run_locust(config, server, args, redis_url, workdir):
    """Drive ``server`` through every level; return the figures the locustfile wrote."""
    output = workdir / f"{config.key}.json"
    output.unlink(missing_ok=True)
    budget = len(args.levels) * (args.warm_up + args.seconds + 5) + 30
    environ = {
        **os.environ,
        "LOADTEST_LEVELS": ",".join(map(str, args.levels)),
        "LOADTEST_WARM_UP": str(args.warm_up),
        "LOADTEST_SECONDS": str(args.seconds),
        "LOADTEST_OUTPUT": str(output),
        "LOADTEST_REDIS_URL": redis_url,
        "LOADTEST_SERVER_PID": str(server.pid),
        "LOADTEST_LABEL": config.label,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(LOCUST),
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", server.url,
        "--users", str(args.levels[0]),
        "--spawn-rate", str(max(args.levels[0], 1)),
        "--run-time", f"{budget:.0f}s",  # a bound: the conductor stops locust long before
        "--only-summary",
        "--loglevel", "WARNING",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    # Locust's own output goes to its log; the conductor's progress lines to this stderr.
    progress_fd = os.dup(sys.stderr.fileno())
    environ["LOADTEST_PROGRESS_FD"] = str(progress_fd)
    try:
        with open(workdir / f"{config.key}.locust.log", "wb") as log:
            subprocess.run(
                command,
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(progress_fd,),
                check=False,
                timeout=budget + 30,
            )
    finally:
        os.close(progress_fd)
    if not output.exists():
        raise servers.ServerFailed(f"locust wrote no figures for {config.label}; see {log.name} in {workdir}")
    return json.loads(output.read_text())["levels"]


def measure(config, args, environ, redis_client, workdir):
    """Start ``config``'s server, drive it, stop it; return its figures by level."""
    redis_client.flushall()
    reset_passwords(environ)
    started = time.perf_counter()
    server = servers.Server(
        config,
        port=free_port(),
        workers=args.workers,
        environ=environ,
        log_path=workdir / f"{config.key}.server.log",
    )
    server.start()
    progress(f"  {config.label}: ready in {time.perf_counter() - started:.1f} s at {server.url}")
    try:
        levels = run_locust(config, server, args, environ["REDIS_URL"], workdir)
        if not server.alive():
            raise servers.ServerFailed(f"{config.label} died under load{server.log_tail()}")
    finally:
        server.stop()
    return levels


def redis_idle_cpu(redis_client, seconds=2.0):
    """Return the CPU seconds per second Redis uses with no client but this one: its own chores."""

    def used():
        info = redis_client.info("cpu")
        return time.perf_counter(), info["used_cpu_sys"] + info["used_cpu_user"]

    start, before = used()
    time.sleep(seconds)
    end, after = used()
    return (after - before) / (end - start)


def estimate(args):
    per_level = args.warm_up + args.seconds + 0.5
    return len(args.configs) * (len(args.levels) * per_level + 8) + 15


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    from bench.loadtest import report

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # What an earlier run left: its database, figures and logs (and nothing else there).
    for path in workdir.iterdir():
        if path.is_file() and (path.suffix in {".json", ".log"} or path.name.startswith("db.sqlite3")):
            path.unlink()
    levels = ", ".join(map(str, args.levels))
    progress(
        f"Load test: {len(args.configs)} server/engine configuration(s) × {len(args.levels)} level(s) "
        f"({levels} users), {args.warm_up:g} s warm-up + {args.seconds:g} s measured each; "
        f"about {estimate(args) / 60:.0f} min. Logs in {workdir}."
    )
    if note := report.engine_note():
        progress(f"note: {note}")
    results = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(shallow_idle())
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="sessiondemo-loadtest-"))
        redis_server = RedisServer(directory).start()
        stack.callback(redis_server.stop)
        database_url, database_note = stack.enter_context(database(workdir))
        environ = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "REDIS_URL": redis_server.url,
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(ROOT),
        }
        prepare_database(environ, max(args.levels))
        redis_client = stack.enter_context(redis_server.client())
        facts = report.machine(redis_client, args, database_note)
        idle = redis_idle_cpu(redis_client)
        facts["Redis CPU when idle"] = f"{1e3 * idle:.1f} ms per second (INFO cpu, 2 s before the first server)"
        progress(f"Redis on {redis_server.url}; database: {database_note}; {max(args.levels)} accounts")
        for number, config in enumerate(args.configs, 1):
            progress(f"[{number}/{len(args.configs)}] {config.label}")
            try:
                results[config] = measure(config, args, environ, redis_client, workdir)
            except servers.ServerFailed as e:
                # Said, reported as not measured, and the run goes on to the next.
                progress(f"  {config.label}: {e}")
                results[config] = [{"failure": str(e)}]
    goals = report.evaluate(results, args)
    output = None if args.output == "-" else Path(args.output)
    if output:
        assets = output.parent / ASSETS
        from bench.loadtest import charts

        written = charts.write_all(assets, results, args)
        figures = {"facts": facts, "results": {c.key: levels for c, levels in results.items()}}
        (assets / FIGURES).write_text(json.dumps(figures, indent=1) + "\n")
        output.write_text(report.render(facts, args, results, goals, written))
        progress(f"wrote {output}, and {', '.join(written.values())} and {FIGURES} in {assets}")
    progress(report.goals_text(goals))
    progress(f"done in {time.perf_counter() - started:.0f} s")
    return results, goals


if __name__ == "__main__":
    found, _ = main()
    # The goals are printed, not enforced (as make bench does); a configuration
    # that could not be measured at all fails the run.
    sys.exit(1 if any("users" not in level for levels in found.values() for level in levels) else 0)
