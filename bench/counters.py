"""What an operation costs besides time: Redis round trips and commands, SQL statements."""

import contextlib
import dataclasses

from django.db import connections

from sessiondemo.testing.probes import RoundTrips


@dataclasses.dataclass
class Cost:
    """Totals over a block; divide by the operations it ran."""

    round_trips: int = 0
    redis_commands: int = 0  # as Redis counts them: commands inside Lua scripts too
    redis_usec: int = 0  # time Redis spent executing them
    sql_statements: int = 0

    def __add__(self, other):
        return Cost(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def per(self, count):
        """Return these totals divided by ``count``."""
        return Cost(*(value / count for value in dataclasses.astuple(self)))


def redis_command_stats(client):
    """Return (calls, usec) summed over INFO commandstats, leaving out INFO itself."""
    stats = client.info("commandstats")
    counted = [v for name, v in stats.items() if name != "cmdstat_info"]
    return sum(v["calls"] for v in counted), sum(v["usec"] for v in counted)


@contextlib.contextmanager
def counting(redis_client, db_alias=None):
    """Yield a Cost that holds what the block cost once it ends."""
    cost = Cost()
    statements = []

    def count_statement(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    calls_before, usec_before = redis_command_stats(redis_client)
    with contextlib.ExitStack() as stack:
        trips = stack.enter_context(RoundTrips.recording())
        if db_alias:
            stack.enter_context(connections[db_alias].execute_wrapper(count_statement))
        yield cost
    calls_after, usec_after = redis_command_stats(redis_client)
    cost.round_trips = len(trips)
    cost.redis_commands = calls_after - calls_before
    cost.redis_usec = usec_after - usec_before
    cost.sql_statements = len(statements)
