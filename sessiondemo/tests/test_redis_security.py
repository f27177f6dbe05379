"""
The engine against a locked-down Redis: a password, an ACL user held to the
engine's keys and commands, and TLS; and only against one configured that way.

Each test starts its own redis-server; the site is pointed at it for the test
only (sessions_at), then back at the suite's Redis.
"""

import contextlib
import os
import secrets
from urllib.parse import urlencode

import pytest
import redis
import trustme
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.test import Client
from redis.backoff import NoBackoff
from redis.connection import SSLConnection
from redis.retry import Retry

from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.conf import key_prefix
from sessiondemo.sessions.connection import get_client
from sessiondemo.sessions.keys import index_buckets_key
from sessiondemo.testing.redis_server import RedisServer, TLSFiles
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.web import NEW_PASSWORD, assert_unavailable, change_password, submit_login

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
APP_USER = "sessiondemo"

# What the site's Redis user may run: the engine's commands, as sent and as
# called inside its Lua scripts (Redis checks those too), and nothing else.
APP_COMMANDS = [
    # The engine's scripts (EVALSHA; EVAL after NOSCRIPT on a fresh or restarted server).
    "evalsha", "eval",
    # Redis's clock, read inside the scripts and now and then by the engine
    # (clock.py): every time the engine keeps is Redis's.
    "time",
    # Sessions (strings): the read (getex, pexpiretime), the create, save, move and
    # delete scripts, the session list (get, pttl), logout (getdel); a session's own expiry.
    "getex", "pexpiretime", "get", "set", "exists", "del", "getdel", "pttl", "pexpire", "pexpireat",
    # Per-user indexes (fields of hashes) and the set of their hashes: filing
    # (hset, hincrby), the index scripts, the session list, clearsessions
    # (getrange reads the head of a session).
    "hget", "hset", "hincrby", "hdel", "hgetall", "sadd", "srem", "sscan", "getrange",
    # endsessions --all walks the prefix and unlinks.
    "scan", "unlink",
    # Login throttling counters (<prefix>t:*).
    "incr", "decr", "expire", "ttl",
    # redis-py's connection health check (health_check_interval in production).
    "ping",
]  # fmt: skip


# How an ACL refusal reads (redis-py drops the NOPERM code): for a command or a
# key, and for a command called from a script.
REFUSED = "no permissions to (run|access)|can't run this command"
# Clients of our own that fail at once, without redis-py's default retries.
NO_RETRY = {"retry": Retry(NoBackoff(), 0)}


def acl_rule(password):
    """The ACL line that creates the site's user: its prefix, its commands, no channels."""
    commands = " ".join(f"+{name}" for name in APP_COMMANDS)
    return f"user {APP_USER} on >{password} ~{key_prefix()}* resetchannels -@all {commands}"


def assert_login_profile_logout(user, password):
    """Log in, see /profile/, log out, and find the session gone, through the site."""
    client = Client()
    response = submit_login(client, user, password)
    assert response.status_code == 302, response.status_code
    assert response.cookies[COOKIE].value
    response = client.get("/profile/", secure=True)
    assert response.status_code == 200
    assert user.username in response.text
    assert client.post("/accounts/logout/", secure=True).status_code == 302
    assert client.get("/profile/", secure=True).status_code == 302


# -- A password (requirepass) -------------------------------------------------


@pytest.fixture
def password_redis(tmp_path):
    secret = secrets.token_urlsafe(24)
    server = RedisServer(tmp_path, args=["--requirepass", secret], password=secret).start()
    yield server, secret
    server.stop()


def test_a_password_protected_redis_refuses_clients_without_the_password(password_redis):
    """A client that sends no password gets NOAUTH, even for PING."""
    server, _ = password_redis
    anonymous = server.client(password=None, **NO_RETRY)

    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()


def test_the_flow_works_with_the_password_in_the_url(password_redis, user, password):
    """The site logs in, shows /profile/ and logs out with redis://:password@host/."""
    server, secret = password_redis

    with sessions_at(f"redis://:{secret}@127.0.0.1:{server.port}/0"):
        assert_login_profile_logout(user, password)

    # Logout left no session behind; what is left (the index, the list of its
    # buckets, the login's throttle counters) expires.
    left = server.client().keys()
    assert index_buckets_key().encode() in left
    assert not [key for key in left if key.startswith(b"sd:s:")]
    assert all(server.client().ttl(key) > 0 for key in left)


def test_the_flow_works_with_the_password_in_options(password_redis, user, password):
    """The same with the password in the sessions cache's OPTIONS["PASSWORD"]."""
    server, secret = password_redis

    with sessions_at(server.url, options={"PASSWORD": secret}):
        assert_login_profile_logout(user, password)


def test_a_wrong_password_is_an_outage_and_is_not_logged(password_redis, user, password, caplog):
    """A site with the wrong password answers 503, never 500, and logs no password."""
    server, secret = password_redis
    wrong = secrets.token_urlsafe(24)
    client = Client(raise_request_exception=False)

    with sessions_at(f"redis://:{wrong}@127.0.0.1:{server.port}/0"):
        response = submit_login(client, user, password)

    assert_unavailable(response)
    assert wrong not in caplog.text and secret not in caplog.text
    assert wrong not in response.text


# -- An ACL user held to the engine's keys and commands -------------------------


@pytest.fixture
def acl_redis(tmp_path):
    """A Redis whose default user is off, with an admin and the site's own user."""
    admin_password, app_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    users = tmp_path / "users.acl"
    users.write_text(
        "user default off\n"
        f"user admin on >{admin_password} ~* &* +@all\n"
        f"{acl_rule(app_password)}\n"
    )
    # DEBUG is allowed from local connections, so that it is the ACL that refuses it.
    args = ["--aclfile", str(users), "--enable-debug-command", "local"]
    server = RedisServer(tmp_path / "data", args=args, username="admin", password=admin_password)
    server.start()
    yield server, app_password
    server.stop()


@pytest.fixture
def as_app_user(acl_redis):
    """Point the site at the ACL Redis, logged in as the site's user, for the test."""
    server, app_password = acl_redis
    # As REDIS_URL would say it in production.
    url = f"redis://{APP_USER}:{app_password}@127.0.0.1:{server.port}/0"
    # Production checks a connection's health (PING) after 30 s idle; here at every use.
    with sessions_at(url, pool_kwargs={"health_check_interval": 1e-9}):
        yield server


def acl_denials(server):
    """What Redis refused to anyone since it started, as "<reason> <object> (<context>)"."""
    return [f"{e['reason']} {e['object']} ({e['context']})" for e in server.client().acl_log()]


@contextlib.contextmanager
def explaining_denials(server):
    """Turn a failure in the block into one that says what the ACL refused, if anything."""
    try:
        yield
    except Exception as e:
        if denials := acl_denials(server):
            raise AssertionError(f"Redis refused the site's user: {denials}") from e
        raise


def test_the_default_user_is_off(acl_redis):
    """Nobody gets in without a user name and password: no default user."""
    server, _ = acl_redis

    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client(username=None, password=None, **NO_RETRY).ping()
    assert "off" in server.client().acl_getuser("default")["flags"]


def test_the_whole_site_works_as_the_restricted_user(as_app_user, user, password, capsys):
    """Login, profile, sessions page, ending other sessions, password change, logout, commands."""
    server = as_app_user
    here, there = Client(), Client()
    with explaining_denials(server):
        assert submit_login(there, user, "not the password").status_code == 200  # throttling counts it
        assert submit_login(here, user, password).status_code == 302
        assert submit_login(there, user, password).status_code == 302
        assert user.username in here.get("/profile/", secure=True).text
        assert here.get("/accounts/sessions/", secure=True).status_code == 200

        # Right after login no re-authentication is due.
        assert here.post("/accounts/sessions/others/end/", secure=True).status_code == 302
        assert there.get("/profile/", secure=True).status_code == 302

        assert submit_login(there, user, password).status_code == 302
        response = change_password(here, password, NEW_PASSWORD)
        assert response.status_code == 302
        assert there.get("/profile/", secure=True).status_code == 302
        assert here.get("/profile/", secure=True).status_code == 200

        call_command("clearsessions", verbosity=1)
        assert "clearsessions: scanned 1 user index(es)" in capsys.readouterr().out
        assert here.post("/accounts/logout/", secure=True).status_code == 302
        assert here.get("/profile/", secure=True).status_code == 302
        assert submit_login(there, user, NEW_PASSWORD).status_code == 302
        call_command("endsessions", "--all")
        assert "Ended 1 session." in capsys.readouterr().out
        assert there.get("/profile/", secure=True).status_code == 302

    assert acl_denials(server) == []
    # Every connection but our own admin one is the site's user.
    users = {c["user"] for c in server.client().client_list()}
    assert users == {"admin", APP_USER}
    # The engine wrote only under its prefix.
    assert all(k.decode().startswith(key_prefix()) for k in server.client().scan_iter())


def test_every_kind_of_session_write_works_as_the_restricted_user(as_app_user, user):
    """Create, update, remove a key, clear and rewrite, move to a new id, renew, delete."""
    with explaining_denials(as_app_user):
        session = SessionStore()
        session.update({"a": 1, "b": 2, SESSION_KEY: str(user.pk)})
        session.create()
        session.save()
        session = SessionStore(session.session_key)
        del session["b"]
        session.save()  # an update that removes a field
        session.clear()
        session.update({"c": 3, SESSION_KEY: str(user.pk)})
        session.save()  # a rewrite of the whole hash
        session.cycle_key()
        session.save()
        session.renew()
        session.save()
        assert session.exists(session.session_key)
        assert dict(SessionStore(session.session_key).items()) == {"c": 3, SESSION_KEY: str(user.pk)}
        assert session.handle in {info.handle for info in SessionStore.user_sessions(user.pk)}
        session.delete()
        assert not session.exists(session.session_key)

    assert acl_denials(as_app_user) == []


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("CONFIG", "GET", "*"), id="config get"),
        pytest.param(("FLUSHALL",), id="flushall"),
        pytest.param(("FLUSHDB",), id="flushdb"),
        pytest.param(("KEYS", "*"), id="keys"),
        pytest.param(("DEBUG", "SLEEP", "0"), id="debug sleep"),
        pytest.param(("SHUTDOWN", "NOSAVE"), id="shutdown"),
        pytest.param(("ACL", "SETUSER", APP_USER, "+@all"), id="acl setuser"),
        pytest.param(("SCRIPT", "FLUSH"), id="script flush"),
        pytest.param(("LPUSH", f"{key_prefix()}s:planted", "x"), id="lpush under the prefix"),
        pytest.param(("GET", "other:key"), id="get another key"),
        pytest.param(("DEL", "other:key"), id="del another key"),
        pytest.param(
            ("EVAL", "return redis.call('GET', KEYS[1])", "1", "other:key"),
            id="script reading another key",
        ),
        pytest.param(("EVAL", "return redis.call('FLUSHALL')", "0"), id="script flushing"),
    ],
)
def test_the_site_user_may_not_run_anything_else(as_app_user, command):
    """The site's credentials get NOPERM for admin commands, other keys, and scripts doing either."""
    server = as_app_user
    server.client().set("other:key", "kept")

    with pytest.raises(redis.exceptions.ResponseError, match=REFUSED):
        get_client().execute_command(*command)

    assert server.client().get("other:key") == b"kept"
    assert server.process.poll() is None


def test_the_site_user_is_not_the_default_user(as_app_user):
    """The site's own connections are authenticated as the site's user."""
    server = as_app_user
    get_client().ping()

    mine = [c for c in server.client().client_list() if c["user"] != "admin"]
    assert mine and {c["user"] for c in mine} == {APP_USER}


# -- TLS --------------------------------------------------------------------------


def require_tls(error):
    """Skip when this redis-server was built without TLS; fail instead when CI=true."""
    reason = f"this redis-server cannot serve TLS: {error}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so the TLS tests must run", pytrace=False)
    pytest.skip(reason)


def built_without_tls(error):
    """Return True if ``error`` (from RedisServer.start) says the binary has no TLS at all."""
    text = str(error)
    # Redis up to 7.0 built without TLS has no tls-* directives; 7.2 on has them but no listener.
    return ("Bad directive" in text and "'tls-" in text) or "listener of tls" in text


def write_tls_files(ca, directory):
    """Write a server certificate for 127.0.0.1 issued by ``ca``, and the CA, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(
        cert=directory / "server.pem", key=directory / "server.key", ca=directory / "ca.pem"
    )
    issued.cert_chain_pems[0].write_to_path(files.cert)
    issued.private_key_pem.write_to_path(files.key)
    ca.cert_pem.write_to_path(files.ca)
    return files


@pytest.fixture
def tls_redis(tmp_path):
    """A redis-server that speaks only TLS, with a certificate from a CA made for the test."""
    server = RedisServer(tmp_path / "data", tls=write_tls_files(trustme.CA(), tmp_path / "tls"))
    try:
        server.start()
    except RuntimeError as e:
        if not built_without_tls(e):
            raise
        require_tls(e)
    yield server
    server.stop()


def tls_options(ca_path):
    return {"ssl_ca_certs": str(ca_path), "ssl_cert_reqs": "required"}


def test_the_flow_works_over_tls(tls_redis, user, password):
    """With rediss:// and the CA trusted, the site works; its connections are TLS ones."""
    with sessions_at(tls_redis.url, pool_kwargs=tls_options(tls_redis.tls.ca)):
        assert_login_profile_logout(user, password)
        assert issubclass(get_client().connection_pool.connection_class, SSLConnection)


def test_the_ca_can_be_given_in_the_url(tls_redis, user, password):
    """REDIS_URL alone can name the CA: rediss://host/0?ssl_ca_certs=...&ssl_cert_reqs=required."""
    query = urlencode(tls_options(tls_redis.tls.ca))
    with sessions_at(f"{tls_redis.url}?{query}"):
        assert_login_profile_logout(user, password)


def test_a_plaintext_client_gets_nothing_from_the_tls_port(tls_redis, user, password):
    """Plain redis:// to the TLS port fails: for a client, and for the site (503)."""
    plain = redis.Redis(host="127.0.0.1", port=tls_redis.port, socket_timeout=2, **NO_RETRY)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()

    with sessions_at(f"redis://127.0.0.1:{tls_redis.port}/0"):
        response = submit_login(Client(raise_request_exception=False), user, password)
    assert_unavailable(response)


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_redis, tmp_path, user, password):
    """A certificate from a CA the client does not trust ends the handshake: no session, 503."""
    stranger = write_tls_files(trustme.CA(), tmp_path / "other-ca").ca
    with pytest.raises(redis.exceptions.ConnectionError, match="(?i)certificate verify failed"):
        tls_redis.client(ssl_ca_certs=str(stranger), **NO_RETRY).ping()

    with sessions_at(tls_redis.url, pool_kwargs=tls_options(stranger)):
        response = submit_login(Client(raise_request_exception=False), user, password)
    assert_unavailable(response)
    assert tls_redis.client().dbsize() == 0
