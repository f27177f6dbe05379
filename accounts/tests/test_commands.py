"""manage.py clearsessions and endsessions, run against the real Redis."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.tests.factories import UserFactory
from sessiondemo.sessions.index import NEW_ENTRY_MARGIN_MS
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.web import (
    file_in_index,
    index_entries,
    browser,
    file_long_ago,
    indexed,
    is_logged_in,
    log_in,
    redis_key,
    redis_ms,
)

pytestmark = pytest.mark.django_db


def run(name, *args, **options):
    out = StringIO()
    call_command(name, *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def alice(password):
    return UserFactory(username="alice", password=password)


@pytest.fixture
def bob(password):
    return UserFactory(username="bob", password=password)


# clearsessions


def test_clearsessions_prunes_index_entries_of_expired_sessions(alice, bob, password, redis):
    alice_clients = [browser(ip=f"203.0.113.{n}") for n in range(3)]
    alice_ids = [log_in(c, alice, password) for c in alice_clients]
    bob_client = browser(ip="198.51.100.7")
    bob_id = log_in(bob_client, bob, password)
    # Redis expired two of alice's sessions and bob's only one (a past expiry deletes the key).
    redis.pexpireat(redis_key(alice_ids[0]), 1)
    redis.pexpire(redis_key(alice_ids[1]), 0)
    redis.pexpireat(redis_key(bob_id), 1)
    assert len(index_entries(redis, alice.pk)) == 3  # the entries outlive their sessions
    file_long_ago(redis, alice)
    file_long_ago(redis, bob)

    out = run("clearsessions", verbosity=2)

    assert out == (
        "clearsessions: scanned 2 user index(es), pruned 3 entr(y/ies) of ended sessions, "
        "removed 1 empty index(es).\n"
    )
    assert indexed(redis, alice) == {session_name(alice_ids[2])}
    assert index_entries(redis, bob.pk) == {}
    # The live session is untouched.
    assert is_logged_in(alice_clients[2])
    assert redis.exists(redis_key(alice_ids[2])) == 1


def test_clearsessions_prunes_entries_past_the_horizon(alice, password, redis, settings):
    ids = [log_in(browser(), alice, password) for _ in range(2)]
    horizon_ms = settings.SESSION_REDIS_ABSOLUTE_AGE * 1000 + NEW_ENTRY_MARGIN_MS
    file_in_index(redis, alice.pk, {session_name(ids[0]): redis_ms(redis) - horizon_ms - 1})

    out = run("clearsessions", verbosity=1)

    assert "pruned 1 entr(y/ies)" in out
    assert indexed(redis, alice) == {session_name(ids[1])}


def test_clearsessions_is_idempotent(alice, password, redis):
    ids = [log_in(browser(), alice, password) for _ in range(2)]
    redis.delete(redis_key(ids[0]))
    file_long_ago(redis, alice)

    first = run("clearsessions", verbosity=1)
    second = run("clearsessions", verbosity=1)

    assert "pruned 1 entr(y/ies)" in first
    assert second == (
        "clearsessions: scanned 1 user index(es), pruned 0 entr(y/ies) of ended sessions, "
        "removed 0 empty index(es).\n"
    )
    assert indexed(redis, alice) == {session_name(ids[1])}


def test_clearsessions_with_nothing_to_do(redis):
    out = run("clearsessions", verbosity=1)

    assert out == (
        "clearsessions: scanned 0 user index(es), pruned 0 entr(y/ies) of ended sessions, "
        "removed 0 empty index(es).\n"
    )


def test_clearsessions_is_quiet_at_verbosity_zero(alice, password, redis):
    session_id = log_in(browser(), alice, password)
    redis.delete(redis_key(session_id))
    file_long_ago(redis, alice)

    assert run("clearsessions", verbosity=0) == ""
    assert index_entries(redis, alice.pk) == {}


def test_clearsessions_leaves_live_sessions_and_other_keys_alone(alice, password, redis):
    client = browser()
    session_id = log_in(client, alice, password)
    redis.set("unrelated", "value")
    before = redis.get(redis_key(session_id))

    run("clearsessions", verbosity=0)

    assert redis.get(redis_key(session_id)) == before
    assert indexed(redis, alice) == {session_name(session_id)}
    assert redis.get("unrelated") == b"value"
    assert is_logged_in(client)


def test_clearsessions_walks_many_users(password, redis):
    users = [UserFactory(password=password) for _ in range(12)]
    for user in users:
        redis.delete(redis_key(log_in(browser(), user, password)))
        file_long_ago(redis, user)

    out = run("clearsessions", verbosity=1)

    assert "scanned 12 user index(es), pruned 12 entr(y/ies)" in out
    assert "removed 12 empty index(es)" in out
    assert list(redis.scan_iter(match="sd:u:*")) == []


# endsessions


def test_endsessions_ends_every_session_of_the_named_user(alice, bob, password, redis):
    alice_clients = [browser(), browser()]
    alice_ids = [log_in(c, alice, password) for c in alice_clients]
    bob_client = browser()
    bob_id = log_in(bob_client, bob, password)

    out = run("endsessions", "--user", "alice")

    assert out == "Ended 2 sessions.\n"
    assert not any(redis.exists(redis_key(i)) for i in alice_ids)
    assert index_entries(redis, alice.pk) == {}
    assert not any(is_logged_in(c) for c in alice_clients)
    assert redis.exists(redis_key(bob_id)) == 1
    assert is_logged_in(bob_client)


def test_endsessions_takes_several_users(alice, bob, password, redis):
    clients = [browser(), browser(), browser()]
    log_in(clients[0], alice, password)
    log_in(clients[1], bob, password)
    log_in(clients[2], bob, password)

    out = run("endsessions", "--user", "alice", "--user", "bob")

    assert out == "Ended 3 sessions.\n"
    assert not any(is_logged_in(c) for c in clients)


def test_endsessions_counts_in_the_singular_and_zero(alice, bob, password, redis):
    log_in(browser(), alice, password)

    assert run("endsessions", "--user", "alice") == "Ended 1 session.\n"
    assert run("endsessions", "--user", "alice") == "Ended 0 sessions.\n"
    assert run("endsessions", "--user", "bob") == "Ended 0 sessions.\n"


def test_endsessions_all_ends_every_session(alice, bob, password, redis):
    clients = [browser(), browser(), browser()]
    log_in(clients[0], alice, password)
    log_in(clients[1], alice, password)
    log_in(clients[2], bob, password)
    redis.set("unrelated", "value")

    out = run("endsessions", "--all")

    assert out == "Ended 3 sessions.\n"
    assert not any(is_logged_in(c) for c in clients)
    assert list(redis.scan_iter(match="sd:s:*")) == []
    assert list(redis.scan_iter(match="sd:u:*")) == []
    assert redis.get("unrelated") == b"value"


def test_endsessions_of_an_unknown_user_is_an_error_and_ends_nothing(alice, password, redis):
    client = browser()
    session_id = log_in(client, alice, password)

    with pytest.raises(CommandError, match=r"^No such user: nobody\.$"):
        run("endsessions", "--user", "alice", "--user", "nobody")

    assert redis.exists(redis_key(session_id)) == 1
    assert is_logged_in(client)


def test_endsessions_needs_a_target(redis):
    with pytest.raises(CommandError, match="--user"):
        run("endsessions")
    with pytest.raises(CommandError, match="not allowed with"):
        run("endsessions", "--user", "alice", "--all")
