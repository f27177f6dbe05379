"""
What a durable login costs (SESSION_REDIS_MIN_REPLICAS): new logged-in sessions of our engine
with a replica attached, without and with waiting for it, taking turns.
"""

import random
import statistics
import tempfile
import time

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.test import override_settings

from sessiondemo.testing.redis_server import RedisServer
from sessiondemo.testing.sentinel import wait_until_replicated

TURN = 50
SETTINGS = {"without WAIT": 0, "with WAIT 1": 1}


def measure_durable_logins(store_class, server, count, progress):
    """Return {label: (p50 ms, p99 ms)} for ``count`` new logged-in sessions per setting."""
    with tempfile.TemporaryDirectory(prefix="sessiondemo-bench-replica-") as directory:
        replica = RedisServer(directory, args=["--replicaof", "127.0.0.1", str(server.port)]).start()
        try:
            wait_until_replicated(replica)
            latencies = {label: [] for label in SETTINGS}
            order = random.Random(0)
            for turn in range(max(count // TURN, 1)):
                labels = list(SETTINGS)
                order.shuffle(labels)
                for label in labels:
                    with override_settings(SESSION_REDIS_MIN_REPLICAS=SETTINGS[label]):
                        for i in range(TURN):
                            latencies[label].append(_login(store_class, turn * TURN + i))
            progress(f"  durable logins: {count} per setting, a replica attached")
        finally:
            replica.stop()
    return {label: _summary(found) for label, found in latencies.items()}


def _login(store_class, n):
    store = store_class()
    store[SESSION_KEY] = str(n % 1000 + 1)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = "%064x" % n
    started = time.perf_counter()
    store.create()
    return time.perf_counter() - started


def _summary(latencies):
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return quantiles[49] * 1000, quantiles[98] * 1000


def durable_table(durable):
    """Return the markdown table of measure_durable_logins()'s figures."""
    if not durable:
        return "Not measured in this run."
    base = durable["without WAIT"][0]
    rows = [
        f"| {label} | {p50:.3f} | {p99:.3f} | {p50 / base:.2f}x |" for label, (p50, p99) in durable.items()
    ]
    return "\n".join(["| a new logged-in session (ours) | p50 ms | p99 ms | p50 ratio |", "|---|---|---|---|", *rows])
