"""
What an operation costs besides time: Redis round trips, commands and time, SQL statements.

Redis's time comes from ``INFO commandstats``, which counts a command run by a
Lua script (or queued in MULTI and run by EXEC) twice: on its own line, and
inside the EVALSHA (or EXEC) that ran it, whose time includes it. So the time
summed here is that of the commands the clients sent, and only theirs: the
count of each command name that went over the benchmark's connections
(sessiondemo.testing.probes.RoundTrips) says how many of Redis's calls of that
name were the clients', and that share of its time is added. Where one name
is both sent and run inside scripts in one block (a DEL, say), the share
assumes the calls took equally long. Redis's main-thread CPU time (``INFO
cpu``) is kept beside it: that also holds reading requests, writing replies
and Redis's own chores, and is what one Redis core actually spends.
"""

import contextlib
import dataclasses
from collections import Counter

from django.db import connections

from sessiondemo.testing.probes import RoundTrips

# Commands whose time includes that of the commands they run.
CONTAINERS = {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "exec"}


@dataclasses.dataclass
class Cost:
    """Totals over a block; divide by the operations it ran."""

    round_trips: int = 0
    redis_commands: int = 0  # as Redis counts them: commands inside Lua scripts too
    redis_usec: float = 0  # Redis's execution time of the commands the clients sent
    redis_cpu_usec: float = 0  # CPU time of Redis's main thread, whatever it did
    sql_statements: int = 0

    def __add__(self, other):
        return Cost(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def per(self, count):
        """Return these totals divided by ``count``."""
        return Cost(*(value / count for value in dataclasses.astuple(self)))


def redis_stats(client):
    """Return {command: (calls, usec)} from INFO commandstats, and Redis's main-thread CPU (s)."""
    info = client.info("commandstats", "cpu")
    commands = {
        name.removeprefix("cmdstat_"): (found["calls"], found["usec"])
        for name, found in info.items()
        if name.startswith("cmdstat_") and name != "cmdstat_info"
    }
    return commands, info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"]


def sent_commands(trips):
    """Count the commands in ``trips`` by lower-case name; those inside MULTI … EXEC are EXEC's."""
    sent = Counter()
    for trip in trips:
        queued = False
        for name in trip:
            name = name.lower()
            if queued and name != "exec":
                continue
            queued = name == "multi"
            sent[name] += 1
    return sent


def clients_usec(before, after, sent):
    """Return the time Redis spent on the commands clients sent, from two redis_stats()."""
    delta = {}
    for name, (calls, usec) in after.items():
        calls_before, usec_before = before.get(name, (0, 0))
        if calls > calls_before:
            delta[name] = (calls - calls_before, usec - usec_before)
    # A subcommand ("script|load") shares the count of its command ("SCRIPT").
    calls_by_command = Counter()
    for name, (calls, _) in delta.items():
        calls_by_command[name.split("|")[0]] += calls
    total = 0.0
    for name, (_, usec) in delta.items():
        command = name.split("|")[0]
        share = min(sent[command], calls_by_command[command]) / calls_by_command[command]
        total += usec * share
    return total


@contextlib.contextmanager
def counting(redis_client, db_alias=None):
    """Yield a Cost that holds what the block cost once it ends."""
    cost = Cost()
    statements = []

    def count_statement(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    commands_before, cpu_before = redis_stats(redis_client)
    with contextlib.ExitStack() as stack:
        trips = stack.enter_context(RoundTrips.recording())
        if db_alias:
            stack.enter_context(connections[db_alias].execute_wrapper(count_statement))
        yield cost
    commands_after, cpu_after = redis_stats(redis_client)
    cost.round_trips = len(trips)
    cost.redis_commands = sum(calls for calls, _ in commands_after.values()) - sum(
        calls for calls, _ in commands_before.values()
    )
    cost.redis_usec = clients_usec(commands_before, commands_after, sent_commands(trips.trips))
    cost.redis_cpu_usec = (cpu_after - cpu_before) * 1e6
    cost.sql_statements = len(statements)
