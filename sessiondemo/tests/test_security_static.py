"""
What the source itself guarantees, checked on its syntax tree, plus what a
writer to Redis can and cannot do to the site.

SEC-01 (ids only from a CSPRNG), SEC-04 (no KEYS/SCAN on the request path;
disjoint key namespaces), SEC-32 (no csrf_exempt), SEC-42 (no pickle; data
planted in Redis logs no one in), SEC-44 (no Redis credentials in the
repository) and SEC-45 (a patched, pinned Django).
See docs/security.md.
"""

import ast
import hashlib
import json
import logging
import pickle
import re
import string
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.test import Client
from django.utils.crypto import get_random_string

from accounts.tests.factories import UserFactory
from sessiondemo.sessions.conf import key_prefix
from sessiondemo.sessions.keys import session_name, session_redis_key, user_index_key
from sessiondemo.sessions import codec
from sessiondemo.testing.web import handle_of, log_in, redis_key, stored

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "sessiondemo" / "sessions"
COOKIE = settings.SESSION_COOKIE_NAME


def project_sources(include_tests=False):
    """Every Python file of the project's own code (no virtualenv, no tests unless asked)."""
    for package in ("sessiondemo", "accounts", "profiles"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if not include_tests and ("tests" in parts or "testing" in parts):
                continue
            yield path
    yield ROOT / "manage.py"


def tree(path):
    return ast.parse(path.read_text(), filename=str(path))


def imported_modules(node):
    for child in ast.walk(node):
        if isinstance(child, ast.Import):
            yield from (alias.name for alias in child.names)
        elif isinstance(child, ast.ImportFrom) and child.module:
            yield child.module
            yield from (f"{child.module}.{alias.name}" for alias in child.names)


def functions(path):
    """Return {qualified name: node} of every function and method in ``path``."""
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[prefix + child.name] = child
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(tree(path), "")
    return found


def called_names(node):
    """The names of what ``node`` calls: ``f(...)`` gives f, ``a.b.f(...)`` gives f."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            func = child.func
            if isinstance(func, ast.Attribute):
                yield func.attr
            elif isinstance(func, ast.Name):
                yield func.id


# -- SEC-01: ids from a CSPRNG only ---------------------------------------------------

def test_sec01_the_engine_imports_no_weak_randomness():
    for path in sorted(ENGINE.glob("*.py")):
        for module in imported_modules(tree(path)):
            assert module.split(".")[0] not in ("random", "uuid", "numpy"), f"{path.name} imports {module}"


def test_sec01_new_ids_come_only_from_the_secrets_module():
    assert set(called_names(functions(ENGINE / "backend.py")["SessionStore._get_new_session_key"])) == {
        "new_session_id"
    }
    keys = functions(ENGINE / "keys.py")
    # The random part of every id, fresh or a successor, is drawn by random_chars();
    # the rest is the slot characters it keeps and check characters derived from it.
    assert set(called_names(keys["new_session_id"])) == {"_with_check", "random_chars"}
    assert set(called_names(keys["successor_id"])) == {"_with_check", "random_chars"}
    assert "random_chars" not in set(called_names(keys["_with_check"]))
    # And random_chars() draws from secrets.randbelow, nothing else random.
    assert "randbelow" in set(called_names(keys["random_chars"]))
    assert "secrets" in set(imported_modules(tree(ENGINE / "keys.py")))
    # Only those two mint ids: nothing else in the engine calls random_chars().
    for path in sorted(ENGINE.glob("*.py")):
        for name, node in functions(path).items():
            if "random_chars" in set(called_names(node)):
                assert (path.name, name) in {("keys.py", "new_session_id"), ("keys.py", "successor_id")}


# -- SEC-04: exact-key commands only on the request path ------------------------------

SCAN_METHODS = {"keys", "scan", "scan_iter", "hscan", "hscan_iter", "sscan", "sscan_iter", "zscan", "zscan_iter"}
LUA_SCAN = re.compile(r"redis\.(p?call)\(\s*['\"](keys|scan)['\"]", re.IGNORECASE)
# The cron and command paths, which walk the whole prefix on purpose.
SCAN_ALLOWED = {
    ("index.py", "prune_all"),
    ("index.py", "end_everything"),
    ("index.py", "_scan_batches"),
    ("index.py", "_scan_members"),
    ("index.py", "_adopt_previous_layout"),
}
REQUEST_PATH = [
    *sorted(ENGINE.glob("*.py")),
    ROOT / "sessiondemo" / "throttle.py",
    ROOT / "sessiondemo" / "clients.py",
    ROOT / "accounts" / "throttling.py",
    ROOT / "accounts" / "backends.py",
    ROOT / "accounts" / "middleware.py",
    ROOT / "accounts" / "services.py",
    ROOT / "accounts" / "selectors.py",
    ROOT / "accounts" / "engine.py",
    ROOT / "accounts" / "signals.py",
    ROOT / "accounts" / "views.py",
    ROOT / "accounts" / "admin.py",
    ROOT / "profiles" / "views.py",
]


def own_nodes(node):
    """Walk ``node`` without descending into the functions and classes nested in it."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from own_nodes(child)


def scans_in(nodes):
    """Yield a description of every KEYS/SCAN sent by the code in ``nodes``."""
    for child in nodes:
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr in SCAN_METHODS:
            # A dict's .keys() takes no argument and is no Redis command; a
            # Redis client's .keys(pattern) takes one.
            if child.func.attr == "keys" and not child.args and not child.keywords:
                continue
            yield f".{child.func.attr}("
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            # A command spelt out: KEYS, SCAN, or a scan of one key's members.
            if LUA_SCAN.search(child.value) or child.value.strip().upper() in ("KEYS", "SCAN", "SSCAN", "HSCAN", "ZSCAN"):
                yield repr(child.value[:40])


def scanning_functions():
    """Return the (file, function) pairs of the request-path modules that send KEYS/SCAN."""
    found = set()
    for path in REQUEST_PATH:
        everywhere = len(list(scans_in(ast.walk(tree(path)))))
        in_functions = 0
        for name, node in functions(path).items():
            direct = len(list(scans_in(own_nodes(node))))
            if direct:
                found.add((path.name, name))
                in_functions += direct
        # None at module level either (the Lua scripts are module constants).
        assert everywhere == in_functions, path.name
    return found


def test_sec04_keys_and_scan_appear_only_in_the_cron_and_command_functions():
    assert all(path.exists() for path in REQUEST_PATH)

    found = scanning_functions()

    assert found, "the scan detector found nothing: it is broken"
    assert found <= SCAN_ALLOWED


def test_sec04_the_scanning_functions_are_reached_only_from_clearsessions_and_endsessions():
    index_functions = functions(ENGINE / "index.py")
    reach = {name for file, name in scanning_functions() if file == "index.py"}
    while True:
        more = {n for n, f in index_functions.items() if reach & set(called_names(f))} - reach
        if not more:
            break
        reach |= more
    assert reach <= {name for _, name in SCAN_ALLOWED}

    callers = set()
    for path in REQUEST_PATH:
        if path.name == "index.py":
            continue
        for name, node in functions(path).items():
            if reach & set(called_names(node)):
                callers.add((path.name, name))
    assert callers == {
        ("users.py", "UserSessionsMixin._prune_all"),
        ("users.py", "UserSessionsMixin.end_all_sessions"),
    }
    # The operation clear_expired() and aclear_expired() run, and nothing else does.
    prune_callers = {name for name, node in functions(ENGINE / "users.py").items() if "_prune_all" in set(called_names(node))}
    assert prune_callers == {"UserSessionsMixin.clear_expired", "UserSessionsMixin.aclear_expired"}

    # Who calls SessionStore.clear_expired() / SessionStore.end_all_sessions():
    # the management commands only, directly or through accounts.engine's
    # end_all_sessions() (the admin's action of the same name, a method called
    # on self, ends one user's sessions through the index).
    users = set()
    for path in project_sources():
        for name, node in functions(path).items():
            for call in own_nodes(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr in ("clear_expired", "aclear_expired", "end_all_sessions")
                    and ast.unparse(call.func.value) != "self"
                ):
                    users.add((path.relative_to(ROOT).as_posix(), name))
    relay = ("accounts/engine.py", "end_all_sessions")
    assert relay in users
    assert all(file.startswith("accounts/management/commands/") for file, _ in users - {relay}), users


def test_sec04_a_whole_flow_sends_no_keys_or_scan_to_redis(redis, db):
    """INFO commandstats counts commands run inside Lua scripts too."""
    user = UserFactory(password="correct horse battery staple")

    def counts():
        stats = redis.info("commandstats")
        return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("keys", "scan")}

    before = counts()
    client = Client()
    client.post("/accounts/login/", {"username": user.username, "password": "wrong"}, secure=True)
    client.post("/accounts/login/", {"username": user.username, "password": "correct horse battery staple"}, secure=True)
    client.get("/profile/", secure=True)
    client.post("/profile/edit/", {"display_name": "Someone", "bio": ""}, secure=True)
    client.get("/accounts/sessions/", secure=True)
    client.post("/accounts/sessions/others/end/", secure=True)
    stranger = Client()
    stranger.cookies[COOKIE] = get_random_string(32, string.ascii_lowercase + string.digits)
    stranger.get("/profile/", secure=True)
    client.post("/accounts/logout/", secure=True)

    assert counts() == before


def test_sec04_session_index_and_counter_keys_live_in_disjoint_namespaces():
    prefix = key_prefix()
    sessions, indexes, counters = f"{prefix}s:", f"{prefix}u:", f"{prefix}t:"
    for a in (sessions, indexes, counters):
        for b in (sessions, indexes, counters):
            assert a == b or not a.startswith(b)
    for _ in range(1000):
        session_id = get_random_string(32, string.ascii_lowercase + string.digits)
        key = session_redis_key(session_name(session_id))
        assert re.fullmatch(rf"{re.escape(sessions)}\{{[0-9a-f]{{4}}\}}[A-Za-z0-9_-]{{22}}", key)
    assert user_index_key(42) == f"{indexes}0"
    assert user_index_key("a-uuid") == f"{indexes}h{hashlib.blake2b(b'a-uuid', digest_size=2).hexdigest()}"


# -- SEC-32: no view skips CSRF -----------------------------------------------------------


def test_sec32_no_view_of_the_project_is_csrf_exempt():
    for path in project_sources():
        source = path.read_text()
        assert "csrf_exempt" not in source, path
        assert "CSRF_TRUSTED_ORIGINS = [\"*" not in source, path


# -- SEC-42: no pickle; nothing planted in Redis logs anyone in -----------------------------


def test_sec42_no_module_of_the_project_imports_pickle():
    for path in project_sources():
        for module in imported_modules(tree(path)):
            top = module.split(".")[0]
            assert top not in ("pickle", "cPickle", "_pickle", "dill", "shelve", "marshal"), f"{path}: {module}"
            assert "serializers.pickle" not in module, f"{path}: {module}"


def test_sec42_sessions_and_their_cache_alias_serialize_as_json():
    assert settings.SESSION_SERIALIZER == "django.contrib.sessions.serializers.JSONSerializer"
    assert settings.CACHES[settings.SESSION_CACHE_ALIAS]["OPTIONS"]["SERIALIZER"] == (
        "django_redis.serializers.json.JSONSerializer"
    )
    # The engine reaches Redis through the raw client, never the cache API.
    for path in sorted(ENGINE.glob("*.py")):
        called = set(called_names(tree(path)))
        assert not {"get_many", "set_many", "get_or_set"} & called, path.name


class MarkerPayload:
    """Unpickling this creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.django_db
def test_sec42_a_pickle_planted_in_a_live_session_runs_nothing_and_logs_no_one_in(user, password, redis, tmp_path, caplog):
    client = Client()
    session_id = log_in(client, user, password)
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(MarkerPayload(marker))
    # The whole value, then a session's header with a pickle for its data.
    redis.set(redis_key(session_id), payload, keepttl=True)
    assert client.get("/profile/", secure=True).status_code == 302
    log_in(client, user, password)
    session_id = client.cookies[COOKIE].value
    raw = redis.get(redis_key(session_id))
    redis.set(redis_key(session_id), raw[: codec.data_offset(raw)] + payload, keepttl=True)

    with caplog.at_level(logging.WARNING, logger="django.security"):
        response = client.get("/profile/", secure=True)

    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)
    assert not marker.exists()
    assert [r for r in caplog.records if r.name.startswith("django.security") and "corrupt" in r.getMessage()]
    # The payload is live: unpickling it would have made the file.
    pickle.loads(payload).close()
    assert marker.exists()


def claim_alice(redis, session_id, alice):
    """Rewrite a session's data to claim ``alice``, as a writer without SECRET_KEY could: the tag stays."""
    raw = redis.get(redis_key(session_id))
    data = json.loads(stored(redis, session_id).data)
    data.update({"_auth_user_id": str(alice.pk), "_auth_user_hash": "0" * 64})
    forged = json.dumps(data, separators=(",", ":")).encode()
    # The flags still say how the old data was stored: plain JSON either way.
    header = bytearray(raw[: codec.data_offset(raw)])
    header[35] = 0
    redis.set(redis_key(session_id), bytes(header) + forged, keepttl=True)


@pytest.mark.django_db
def test_sec42_a_forged_user_id_under_a_live_session_logs_no_one_in(password, redis):
    alice = UserFactory(username="alice", password=password)
    mallory = UserFactory(username="mallory", password=password)
    client = Client()
    session_id = log_in(client, mallory, password)
    key = redis_key(session_id)
    # Someone who can write to Redis rewrites mallory's session to claim alice,
    # without alice's session auth hash (an HMAC under SECRET_KEY).
    claim_alice(redis, session_id, alice)

    response = client.get("/profile/", secure=True)

    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)
    assert "alice" not in response.text
    # The forged session is flushed, not kept.
    assert redis.exists(key) == 0


@pytest.mark.django_db
def test_sec42_a_copy_of_a_real_session_under_a_key_the_writer_chose_logs_no_one_in(user, password, redis):
    victim = Client()
    victim_id = log_in(victim, user, password)
    value = redis.get(redis_key(victim_id))
    chosen = get_random_string(32, string.ascii_lowercase + string.digits)
    # Without SECRET_KEY, the writer can only guess how a cookie maps to a key.
    for guess in (chosen, hashlib.sha256(chosen.encode()).hexdigest()[:32], hashlib.sha256(chosen.encode()).hexdigest()):
        redis.set(f"{key_prefix()}s:{guess}", value, ex=600)

    attacker = Client()
    attacker.cookies[COOKIE] = chosen
    response = attacker.get("/profile/", secure=True)

    assert response.status_code == 302
    assert user.username not in response.text
    assert victim.get("/profile/", secure=True).status_code == 200


@pytest.mark.django_db
def test_sec42_a_forged_session_auth_hash_is_logged_under_django_security(password, redis, caplog):
    alice = UserFactory(username="alice", password=password)
    mallory = UserFactory(username="mallory", password=password)
    client = Client()
    session_id = log_in(client, mallory, password)
    claim_alice(redis, session_id, alice)

    with caplog.at_level(logging.INFO, logger="django.security"):
        assert client.get("/profile/", secure=True).status_code == 302

    # The forged value fails the tag that binds it to mallory's session.
    [record] = [r for r in caplog.records if r.name.startswith("django.security")]
    assert "integrity" in record.getMessage()
    assert handle_of(session_id) in record.getMessage()
    assert session_id not in record.getMessage()


# -- SEC-44: no Redis credentials in the repository ------------------------------------------

# A secret-looking value: 8 or more characters, not a placeholder ($VAR, ..., <pw>).
SECRET = r"[A-Za-z0-9_+=!#%^&*.-]{8,}"
CREDENTIAL_PATTERNS = [
    re.compile(r"rediss?://[^\s/\"'@]*:" + SECRET + "@"),  # a password in a Redis URL
    re.compile(r"requirepass\s+" + SECRET),
    re.compile(r"\bon\s+>" + SECRET),  # an ACL user's password
    re.compile(r"\"PASSWORD\"\s*:\s*\"[^\"$]+\""),  # a literal password in CACHES OPTIONS
]


def test_sec44_no_redis_credentials_are_written_into_the_code_or_settings():
    files = [
        *project_sources(),
        *(ROOT / "scripts").iterdir(),
        ROOT / "Makefile",
        ROOT / "README.md",
    ]
    for path in files:
        text = path.read_text(errors="replace")
        for pattern in CREDENTIAL_PATTERNS:
            assert not pattern.search(text), f"{path.relative_to(ROOT)}: {pattern.search(text).group(0)}"
    # The Redis URL, and with it any password, comes from the environment.
    settings_source = (ROOT / "sessiondemo" / "settings" / "base.py").read_text()
    assert 'REDIS_URL = os.environ.get("REDIS_URL"' in settings_source


# -- SEC-45: a patched framework --------------------------------------------------------------


def test_sec45_django_is_at_least_6_1_3_installed_and_pinned():
    assert django.VERSION[:3] >= (6, 1, 3)
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert tuple(int(p) for p in pins["Django"].split(".")[:3]) >= (6, 1, 3)
    # Every requirement is pinned exactly, so what is audited is what runs.
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, line
