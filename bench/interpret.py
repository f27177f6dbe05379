"""A few sentences of interpretation, computed from the results so that a rerun stays true."""

from .prune import half_stale


def summary(results, prune_runs):
    """Return 4-8 sentences on what the tables show, ours first."""
    ours = next(r for r in results if r.engine.is_ours)
    caches = [r for r in results if r.speed and r.engine.uses_redis and not r.engine.db_alias]
    rivals = [r for r in caches if not r.engine.is_ours]
    sentences = [
        reads(ours, rivals),
        writes(ours, rivals),
        others(ours, rivals),
        site(ours, rivals),
        redis_time(ours, rivals),
        memory(ours, rivals),
        databases(ours, results),
        lost(ours, results),
        pruning(prune_runs),
    ]
    return " ".join(sentence for sentence in sentences if sentence)


def compare(ours_ms, theirs_ms):
    """Return how latency ``ours_ms`` compares with ``theirs_ms``: '12% slower', '2.1× as slow'."""
    ratio = ours_ms / theirs_ms
    if 0.97 <= ratio <= 1.03:
        return "as fast"
    if ratio >= 1.5:
        return f"{ratio:.1f}× as slow"
    if ratio > 1:
        return f"{(ratio - 1) * 100:.0f}% slower"
    if ratio <= 1 / 1.5:
        return f"{1 / ratio:.1f}× as fast"
    return f"{(1 / ratio - 1) * 100:.0f}% faster"


def rounded(value):
    """Return ``value`` rounded to two significant digits, as an int."""
    return int(float(f"{value:.2g}"))


def round_trips(count):
    return f"{count:g} round trip{'' if count == 1 else 's'}"


def fastest(rivals, op):
    return min(rivals, key=lambda r: r.speed[op].p50_ms)


def reads(ours, rivals):
    best = fastest(rivals, "load")
    o, b = ours.speed["load"], best.speed["load"]
    text = (
        f"A read-only request (load) costs ours {round_trips(o.cost.round_trips)}, like "
        f"`{best.engine.label}`, the fastest of Django's here, and ours is "
        f"{compare(o.p50_ms, b.p50_ms)} at the median ({o.p50_ms:.3f} vs {b.p50_ms:.3f} ms)"
    )
    if o.p50_ms > 1.03 * b.p50_ms:
        text += (
            f": its read is a GETEX and a PEXPIRETIME ({o.cost.redis_usec:.1f} µs in Redis against "
            f"{b.cost.redis_usec:.1f} µs for a GET), which slides the idle timeout and gives "
            "Redis's clock, and the client checks the id's check characters, names the key by a "
            "keyed hash of it, checks the value's tag, decompresses it and parses JSON where the "
            "cache unpickles one string"
        )
    return text + "."


def writes(ours, rivals):
    best = fastest(rivals, "update")
    o, b = ours.speed, best.speed
    trips = ", ".join(
        f"{name} {o[op].cost.round_trips:g} against {b[op].cost.round_trips:g}"
        for op, name in (("create", "create"), ("update", "update"), ("delete", "logout"))
    )
    return (
        f"Writes take no more round trips than with `{best.engine.label}` ({trips}; Django's "
        "cache engine checks that a new key is free and re-reads the key before every save), "
        f"and ours is {compare(o['create'].p50_ms, b['create'].p50_ms)} at creating, "
        f"{compare(o['update'].p50_ms, b['update'].p50_ms)} at updating and "
        f"{compare(o['delete'].p50_ms, b['delete'].p50_ms)} at logging out, at the median."
    )


def others(ours, rivals):
    """Compare ours with the Redis cache engines that the sentences before did not."""
    best = {fastest(rivals, "load").engine, fastest(rivals, "update").engine}
    parts = [
        f"against `{r.engine.label}` ours is "
        f"{compare(ours.speed['load'].p50_ms, r.speed['load'].p50_ms)} at loading and "
        f"{compare(ours.speed['update'].p50_ms, r.speed['update'].p50_ms)} at updating"
        for r in rivals
        if r.engine not in best
    ]
    return (parts and parts[0][0].upper() + "; ".join(parts)[1:] + ".") or ""


def site(ours, rivals):
    """Compare the pages through the site's middleware with those of the fastest rival."""
    if not ours.web or not all(r.web for r in rivals):
        return ""
    best = min(rivals, key=lambda r: r.web["read"].p50_ms)
    o, b = ours.web, best.web
    return (
        "Through the site's whole middleware stack, a page that reads the session takes ours "
        f"{o['read'].p50_ms:.3f} ms at the median against {b['read'].p50_ms:.3f} for "
        f"`{best.engine.label}` ({compare(o['read'].p50_ms, b['read'].p50_ms)}), a page that "
        f"writes it {o['write'].p50_ms:.3f} against {b['write'].p50_ms:.3f} "
        f"({compare(o['write'].p50_ms, b['write'].p50_ms)})."
    )


def redis_time(ours, rivals):
    o = ours.speed["update"].cost
    rival = min(rivals, key=lambda found: found.speed["update"].cost.redis_usec)
    r = rival.speed["update"].cost
    ours_cap, their_cap = rounded(1e6 / o.redis_usec), rounded(1e6 / r.redis_usec)
    return (
        f"An update runs {o.redis_commands:g} commands in Redis, {o.redis_usec:.0f} µs of its "
        f"time, against {r.redis_commands:g} and {r.redis_usec:.0f} µs for "
        f"`{rival.engine.label}` (the read, which slides the idle timeout, and a "
        "compare-and-set script that writes only if nobody wrote since the read, so that no "
        "update is lost and no ended session comes back), so that execution time alone would "
        "cap one Redis core at about "
        f"{ours_cap:,} updates a second, against {their_cap:,}."
    )


def memory(ours, rivals):
    o, r = ours.memory, rivals[0].memory
    ratio = o.redis_used_memory / r.redis_used_memory
    text = (
        f"On the README's Redis configuration ours stores {o.redis_used_memory:,.0f} bytes per "
        f"session (`used_memory`) against {r.redis_used_memory:,.0f} for a pickled string, "
        f"{ratio:.2f}× as much: one compressed string per session with its metadata, and a "
        "field in a hash that 64 users share for the session index (and each user's count)"
    )
    d, rd = ours.memory_default, rivals[0].memory_default
    if d and rd:
        text += (
            f"; on Redis's default configuration {d.redis_used_memory:,.0f} against "
            f"{rd.redis_used_memory:,.0f} ({d.redis_used_memory / rd.redis_used_memory:.2f}×)"
        )
        if "hashtable" in (d.redis_layout or "") and "hashtable" not in (o.redis_layout or ""):
            text += (
                ", as an index bucket past the default `hash-max-listpack-entries` or "
                "`hash-max-listpack-value` falls back from the compact listpack to a hashtable"
            )
    return text + "."


def databases(ours, results):
    db = [r for r in results if r.speed and r.engine.db_alias and not r.engine.uses_redis]
    cached = [r for r in results if r.speed and r.engine.db_alias and r.engine.uses_redis]
    if not db:
        return ""
    updates = ", ".join(f"`{r.engine.label}` {r.speed['update'].p50_ms:.2f} ms" for r in db)
    why = "SQLite is a file inside the process"
    if any(r.engine.db_alias == "postgres" for r in db):
        why += ", PostgreSQL pays round trips for transaction control"
    text = (
        "With no sync per commit the database engines are closer than their reputation: an "
        f"update takes {updates} at the median against "
        f"{ours.speed['update'].p50_ms:.2f} ms for ours ({why}), but every one of them "
        "rewrites the whole session"
    )
    if cached:
        text += ", and `cached_db` writes to both stores"
    return text + "."


def lost(ours, results):
    whole = [r for r in results if r.engine.speed and not r.engine.is_ours]
    fewest = min(r.lost.lost_any_round for r in whole)
    most = max(r.lost.lost_any_round for r in whole)
    cookies = next((r for r in results if not r.engine.speed), None)
    total = ours.lost.threads * ours.lost.rounds * ours.lost.repeats
    text = (
        f"Under concurrent saves ours lost {ours.lost.lost_any_round:,} of {total:,} writes; "
        f"the engines that write the whole session back lost {fewest:,} to {most:,}"
    )
    if cookies:
        text += (
            f", and `signed_cookies` {cookies.lost.lost_any_round:,}, a count that only measures "
            "how often the threads' read-to-save windows overlapped, since with no I/O in them "
            "they mostly run one after another (each lost write is a cookie the browser drops)"
        )
    return text + "."


def pruning(runs):
    empty = half_stale(runs, 0)[-1]
    text = (
        f"`clearsessions` pruned {empty.pruned:,} of {empty.entries:,} index entries in "
        f"{empty.seconds:.1f} s with {empty.cost.round_trips:,} round trips in an empty database, "
        f"about {empty.seconds * 1_000_000 / empty.entries:.0f} s per million entries"
    )
    crowded = [run for run in runs if run.unrelated and run.label == "half stale"]
    if crowded:
        c = max(crowded, key=lambda run: (run.unrelated, run.entries))
        text += (
            f"; beside {c.unrelated:,} unrelated keys the same prune took {c.seconds:.1f} s "
            f"({c.cost.round_trips:,} round trips), {c.seconds / empty.seconds:.1f}× as long"
        )
    return text + "."
