"""What the benchmark runs on: a private Redis, temporary databases, and the machine."""

import contextlib
import datetime
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import NamedTuple

import psycopg
import redis

from sessiondemo.testing.redis_server import RECOMMENDED_CONFIG, RedisServer

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
# One per run: two runs on one machine must not drop each other's database.
BENCH_DATABASE = f"sessiondemo_bench_{os.getpid()}"


class Postgres(NamedTuple):
    """The temporary PostgreSQL database: its URL (None if skipped), and a word on it."""

    url: str | None
    note: str


# DEBUG POPULATE fills a database with unrelated keys fast (bench/prune.py); from loopback only.
BENCH_REDIS_ARGS = ["--enable-debug-command", "local"]


# What shallow_idle() managed, for the report.
IDLE_STATES = {"held": False, "note": "not tried"}


@contextlib.contextmanager
def shallow_idle():
    """
    Keep the CPUs out of deep idle states for the block, if this process may.

    A Redis that sleeps between requests wakes with cold caches (on a virtual
    machine, often after the host ran something else), and its time per
    command then varies severalfold with whatever else the machine does.
    Writing 0 to /dev/cpu_dma_latency (Linux PM QoS; held while the file is
    open) makes idle CPUs poll instead, as latency benchmarks do, for every
    engine alike.
    """
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
        os.write(fd, (0).to_bytes(4, sys.byteorder))
    except OSError as e:
        IDLE_STATES.update(held=False, note=f"not held ({e.strerror}): figures vary more")
        yield
        return
    IDLE_STATES.update(held=True, note="held shallow for the run (/dev/cpu_dma_latency = 0)")
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def workspace():
    """Yield a running private Redis and the temporary Postgres, cleaning both up after."""
    with tempfile.TemporaryDirectory(prefix="sessiondemo-bench-") as directory, shallow_idle():
        server = RedisServer(directory, args=BENCH_REDIS_ARGS).start()
        pin_apart(server.process.pid)
        try:
            with postgres_database() as postgres:
                os.environ["BENCH_REDIS_URL"] = server.url
                os.environ["BENCH_SQLITE_PATH"] = os.path.join(directory, "bench.sqlite3")
                if postgres.url:
                    os.environ["BENCH_POSTGRES_URL"] = postgres.url
                yield server, postgres
        finally:
            server.stop()


def pin_apart(redis_pid):
    """
    Put Redis on the last CPU and this process on the others, if there are two or more.

    Redis's `INFO commandstats` times are wall-clock: a command that waits
    for the CPU while the benchmark's own Python runs counts that wait.
    Apart, each engine's figures are what Redis spends, not what it waits.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    os.sched_setaffinity(redis_pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))


def _pinned():
    return "yes" if len(os.sched_getaffinity(0)) < (os.cpu_count() or 1) else "no, one CPU"


# The settings that decide when a hash stops being a compact listpack.
HASH_SETTINGS = ["hash-max-listpack-entries", "hash-max-listpack-value"]


def recommended_config():
    """Return the Redis settings the README recommends (RECOMMENDED_CONFIG), as the bench runs."""
    return {name.removeprefix("--"): value for name, value in zip(*[iter(RECOMMENDED_CONFIG)] * 2)}


def default_config(names, timeout=10.0):
    """
    Return Redis's own default of each setting in ``names``.

    Asks a redis-server started with no settings but a Unix socket in a
    temporary directory (no TCP port), then stops it.
    """
    with tempfile.TemporaryDirectory(prefix="sessiondemo-bench-defaults-") as directory:
        socket_path = os.path.join(directory, "redis.sock")
        command = [RedisServer(directory).binary, "--port", "0", "--unixsocket", socket_path]
        command += ["--save", "", "--appendonly", "no", "--dir", directory]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis(unix_socket_path=socket_path, socket_timeout=1)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    return {name: client.config_get(name)[name] for name in names}
                except (redis.exceptions.ConnectionError, FileNotFoundError):
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("a bare redis-server did not start") from None
                    time.sleep(0.02)
                finally:
                    client.close()
        finally:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def redis_config(redis_client, values):
    """Run the block with Redis's ``values`` (name: value) set, then put the previous ones back."""
    previous = {name: redis_client.config_get(name)[name] for name in values}
    for name, value in values.items():
        redis_client.config_set(name, value)
    try:
        yield
    finally:
        for name, value in previous.items():
            redis_client.config_set(name, value)


@contextlib.contextmanager
def postgres_database():
    """Create this run's database (BENCH_DATABASE), yield a Postgres, and drop it again."""
    admin_url = os.environ.get("DATABASE_URL") or DEFAULT_POSTGRES_URL
    parts = urllib.parse.urlsplit(admin_url)
    where = f"{parts.hostname}:{parts.port or 5432}"
    if parts.scheme not in ("postgres", "postgresql"):
        yield skipped(f"DATABASE_URL is not PostgreSQL ({parts.scheme})")
        return
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        yield skipped(f"not reachable at {where} ({str(e).strip().splitlines()[0]})")
        return
    try:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
        admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
        url = urllib.parse.urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))
        yield Postgres(url, f"temporary database {BENCH_DATABASE} at {where}")
    finally:
        from django.db import connections

        connections.close_all()
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        admin.close()


def skipped(reason):
    """Say on stderr that PostgreSQL is skipped, and return the Postgres that says so."""
    print(f"note: skipping PostgreSQL: {reason}", file=sys.stderr)
    return Postgres(None, f"skipped: {reason}")


def cpu_model():
    """Return the CPU model name from /proc/cpuinfo, or the platform's guess."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def engine_version():
    """Return the commit the engine was measured at, and whether its files had changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        command = ["git", "-C", str(root), *args]
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "sessiondemo/sessions")
    return f"{commit}{' with uncommitted changes' if dirty else ''}"


def ping_latency(redis_client, count=2000):
    """Return the p50 / p99 of ``count`` PINGs, as text."""
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        redis_client.ping()
        latencies.append(time.perf_counter() - start)
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return f"{percentiles[49] * 1e6:.0f} / {percentiles[98] * 1e6:.0f} µs"


def machine(redis_client, postgres):
    """Return the facts about this run that belong at the top of the report."""
    import django
    import django_redis
    import hiredis
    import redis

    facts = {
        "engine (sessiondemo/sessions) at commit": engine_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} (Redis on one of its own: {_pinned()})",
        "CPU idle states": IDLE_STATES["note"],
        "cpu": cpu_model(),
        "load average at start (1 min)": f"{os.getloadavg()[0]:.2f}",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.__version__,
        "django-redis": django_redis.__version__,
        "redis-py": f"{redis.__version__} (hiredis {hiredis.__version__})",
        "redis-server": redis_client.info("server")["redis_version"],
        "Redis round trip here (PING over loopback TCP, p50 / p99)": ping_latency(redis_client),
        "sqlite": sqlite3.sqlite_version,
    }
    facts["postgresql"] = postgres.note
    if postgres.url:
        from django.db import connections

        with connections["postgres"].cursor() as cursor:
            cursor.execute("SHOW server_version")
            facts["postgresql"] = f"{cursor.fetchone()[0].split()[0]} ({postgres.note})"
    return facts
