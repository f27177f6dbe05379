"""How each figure was taken, as the report's prose: the text follows the run's settings."""

from .goals import NOT_GROWING, RIVAL


def general(with_postgres):
    postgres = (
        "; PostgreSQL is a temporary database on the local server, created and dropped by the "
        "run, with `synchronous_commit=off`"
        if with_postgres
        else ""
    )
    return "\n".join([
        "- Payload: a logged-in session, Django's `_auth_user_id`, `_auth_user_backend` and "
        "`_auth_user_hash` plus five small app keys (348 bytes as JSON); each session belongs to "
        "its own user.",
        "- create: a new `SessionStore`, the payload, `save()`. load: `SessionStore(key)` and read "
        "one key (a read-only request). update: load, change one key, `save()`. delete: load, "
        "then `flush()` (a logout).",
        "- Each operation is timed alone with `time.perf_counter()`; ops/s is operations over "
        "the summed latencies. In each of 10 blocks, every operation runs in turns of 100 per "
        "engine, in a new random order each turn (the Redis engines first, then those that "
        "write to a database), so that a slow spell of the machine falls on all of them alike; "
        "the first 2 of each turn run untimed (their Redis cost still counts), since switching "
        "engines and reading Redis's counters slow the next operation of any engine. The p99 "
        "and Redis's time per operation are the medians of the blocks' own, so that a spell "
        "that falls in one block does not stand for all ten.",
        "- The CPUs' idle states are held shallow for the run when the benchmark may "
        "(`/dev/cpu_dma_latency` = 0, as latency benchmarks do; see Machine): a Redis that "
        "sleeps between requests wakes with cold caches, and its time per command then varies "
        "severalfold with whatever else the machine does.",
        "- Django runs with the site's own settings (`sessiondemo.settings.base`: apps, "
        "middleware, authentication, logging), except the stores, a cheap password hasher (MD5: "
        "a login's PBKDF2 would take most of a second, the same with every engine) and logs "
        "written to `/dev/null` rather than the console (each event is still formatted and "
        "written).",
        "- Redis engines share one `redis-server` started for the run on a free loopback TCP "
        "port, on a CPU of its own (the benchmark's Python on the others, when there are two or "
        "more: `INFO commandstats` times are wall-clock, and would count Redis waiting for the "
        "CPU), without persistence, flushed before each engine's memory and lost-update "
        "measurements. Their pools all use the project's round-trip-counting connection class "
        "and 1 s socket timeouts, so that overhead is the same for each.",
        "- `cache + django-redis` uses django-redis's default (pickle) serializer, as its README "
        "recommends for sessions; `cache + Django RedisCache` is Django's own Redis cache "
        "backend (pickle too). Ours stores JSON.",
        "- No store waits for the disk on a write, since Redis here runs without persistence: "
        "SQLite is a file in a temporary directory in WAL mode with `synchronous=NORMAL` and "
        f"`IMMEDIATE` transactions{postgres}. With their defaults (a sync per commit) the "
        "databases' writes would also wait for the disk.",
    ])  # fmt: skip


def goals(settings):
    unrelated = settings["unrelated_keys"]
    return "\n".join([
        f"- **Latency**: ours over `{RIVAL}` at the same percentile of the same operation in "
        "this run (the p99 through the engine API: the median of the ten blocks' p99s). load, load p99, update, create and logout go through the engine API (see "
        "Speed); the two GETs go through the site's whole middleware stack in-process (see "
        "Through the site).",
        "- **Redis time**: Redis's execution time of the commands the clients sent, from "
        "`INFO commandstats` read before and after each block of operations, over the "
        "operations (through the engine API: the median of the ten blocks). A script's `EVALSHA` (or `EVAL`, or a transaction's `EXEC`) counts whole, "
        "since its time includes the commands it runs; the lines of the commands run inside "
        "scripts are left out, as they would count twice. Which calls of a name were the "
        "clients' comes from the commands the benchmark's connections sent; where one name is "
        "both sent and run inside a script in one block, its time counts in the proportion of "
        "calls the clients sent. `INFO` itself is left out. A read is a load through the "
        "engine API; an update is a load, one key changed and a save; a login is the site's "
        "login form posted, end to end: the throttle's reservations on the account's and the "
        "network's budgets, the password check, the session created and filed in the user's "
        "index, and the reservations given back (with the session's save, for ours), not the "
        "GET of the form before it.",
        f"- **Memory**: `used_memory` (`MEMORY STATS`: total.allocated less clients.normal) after "
        f"creating {settings['memory_sessions']:,} logged-in sessions into an empty Redis, less "
        "before, over the sessions: all the engine stores for them (hashes or strings, metadata, "
        "the per-user index, Redis's key table and expiry entries). Ours over `"
        f"{RIVAL}` (one pickled string per session) on the same configuration: Redis's default "
        f"({config_text(settings)}) and the README's.",
        "- **clearsessions**: the wall time of `SessionStore.clear_expired()` (what `manage.py "
        f"clearsessions` calls) on {settings['prune_users']:,} users × 10 index entries, half of "
        f"them stale, the median of {settings['prune_repeats']} runs, scaled linearly to a "
        "million entries (× 10⁶ / entries; beside unrelated keys, they scale with the entries, "
        f"{unrelated // (settings['prune_users'] * 10):,} per entry). The chart adds a quarter and "
        "a half of the users, one run each, to show how linear it is. Client memory: the peak "
        "of Python's allocations (`tracemalloc`) during the call above what was allocated before "
        "it, in runs of their own at a quarter and all of the users (tracemalloc slows Python "
        "down), extrapolated linearly along the line through those two sizes, so that a peak "
        "that stays the same (a prune in batches of a fixed size) stays the same. Both in an "
        f"empty database and beside {unrelated:,} unrelated string keys in the same database "
        "(`DEBUG POPULATE`, allowed from loopback on the benchmark's own Redis). \"Not "
        "growing\" compares the full size beside the unrelated keys with the full size in an "
        f"empty database, as measured: it holds at most {NOT_GROWING:g}×, which leaves room for "
        "the machine's noise.",
    ])  # fmt: skip


def web_text(settings):
    return (
        f"Requests through the site's WSGI handler (`sessiondemo.handlers.WSGIHandler`, the "
        "site's middleware stack) in this process, each a WSGI environ over HTTPS with the "
        "session cookie, its response read and closed (as a WSGI server does), no test client "
        "and no network. The engine is switched with `SESSION_ENGINE` and "
        "`SESSION_CACHE_ALIAS` alone, and the handler is built anew for each. GET, reads the "
        "session: `/bench/read/`, a bench-only page that answers a logged-in visitor's user id "
        "(the session loaded, the user loaded from SQLite and its session hash checked). GET, "
        "writes the session: `/bench/write/?page=…`, the same, and stores one key in the "
        "session. Each visitor's session is created through the engine API beforehand, "
        "logged in as its own user. login form POST: `/accounts/login/` posted with the right "
        "password and the CSRF token, from a new browser that fetched the form first "
        f"(untimed). n = {settings['web_requests']:,} requests of each GET and "
        f"{settings['web_logins']:,} logins per engine, after "
        f"{settings['web_warm_up']} of each GET and a fifth as many logins as warm-up, the "
        "engines taking turns in 10 blocks: each GET in turns of 100 requests per engine, in "
        "a new random order each turn, then the logins an engine at a time (the first 2 "
        "requests of each turn untimed, as above). Cells: requests per second · p50 / p99 "
        "latency in ms."
    )


def config_text(settings):
    default = settings["default_config"]
    return ", ".join(f"`{name} {value}`" for name, value in default.items())


def lost_text(lost):
    return (
        f"{lost.threads} threads share one session. In each of {lost.rounds} rounds they meet "
        "at a barrier, then each opens its own `SessionStore` on that session, sets its own "
        f"key (`t0`…`t{lost.threads - 1}`) to the round number and saves; after every round "
        f"the session is read back. Repeated {lost.repeats} times on fresh sessions. A key that "
        "is missing or holds an older round is a lost write. For `signed_cookies` the session "
        "is the cookie, and the browser keeps the cookie of whichever response came last."
    )


def prune_text(settings):
    users = settings["prune_users"]
    return (
        f"Users with 10 index entries each: 5 live sessions, 3 entries whose score says "
        "expired, 2 whose session is already gone (deleted or expired). "
        "`SessionStore.clear_expired()`, what `manage.py clearsessions` calls, prunes them. At "
        f"a quarter, a half and all of {users:,} users ({users * 10:,} entries); at the full "
        f"size the median of {settings['prune_repeats']} repetitions on fresh data, the first "
        "followed by a run with nothing left to prune, as the next cron run would be; at the "
        "smallest and the full size one more run under `tracemalloc` for the client's peak "
        "memory. All of it in an empty "
        f"database, then beside {settings['unrelated_keys']:,} unrelated keys. Django's "
        "`cache` engines have nothing to prune (Redis expires their keys), and `db` runs one "
        "`DELETE … WHERE expire_date < now`."
    )


def profile_text():
    return (
        "Our engine's load and update through the engine API (as in Speed) under pyinstrument, "
        "sampling every millisecond. The tree gives each call's time per operation, cumulative, "
        "and its share of the operation; a chain of calls that each pass nearly all their time "
        "on is one line, and calls under 3 % are left out. The table gives the functions whose "
        "own lines took the most time. The profiler slows the code down, code that makes many "
        "small calls the most: read the shares more than the microseconds. Time in "
        "`socket.sendall` includes Redis running the command, when the kernel runs Redis on "
        "the sending core before the call returns."
    )
