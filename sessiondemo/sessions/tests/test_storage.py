"""What the engine keeps in Redis, what each save writes, and what each operation costs."""

import logging
import pickle
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, UpdateError

from sessiondemo.sessions import codec, connection, index, protocol, scripts
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import USERS_PER_BUCKET, index_buckets_key, session_name, user_index_key
from sessiondemo.testing.web import (
    file_in_index,
    index_count,
    index_entries,
    redis_key,
    redis_ms,
    set_times,
    stored,
    stored_data,
    write_session_value,
)

UNPICKLED = []


def record_unpickling(marker):
    UNPICKLED.append(marker)


class PicklePayload:
    def __reduce__(self):
        return (record_unpickling, ("unpickled",))


def no_session(char):
    """Return a well-formed session name (a hex tag, a 128-bit digest) that no session has."""
    return char * 25 + "A"


def saved_session(data, *, expiry=None):
    session = SessionStore()
    session.update(data)
    if expiry is not None:
        session.set_expiry(expiry)
    session.save()
    return session


def loaded_session(session_key):
    session = SessionStore(session_key)
    session.keys()
    return session


def planted(session_key, data):
    """Store ``data`` under ``session_key``, as another request would have."""
    session = SessionStore(session_key)
    session._session_cache = dict(data)
    session.save(must_create=True)


def test_a_session_is_one_string_named_by_the_keyed_digest_of_its_id(redis):
    session = saved_session({"cat": "dog", "cart": {"items": [1, 2]}, "n": 3})

    key = redis_key(session.session_key)
    name = session_name(session.session_key)
    assert key == "sd:s:{" + name[:4] + "}" + name[4:]
    assert redis.keys("*") == [key.encode()]
    assert redis.type(key) == b"string"
    assert stored_data(redis, session.session_key) == {"cat": "dog", "cart": {"items": [1, 2]}, "n": 3}


def test_times_come_from_redis_and_the_absolute_deadline_is_fixed_at_creation(redis, settings):
    before = redis_ms(redis)
    session = saved_session({"a": 1})
    value = stored(redis, session.session_key)
    # Redis's clock as the engine last read it, to within that reading's round trip.
    assert before - 2 <= value.created_ms == value.issued_ms <= redis_ms(redis) + 2
    assert value.deadline_ms == value.created_ms + settings.SESSION_REDIS_ABSOLUTE_AGE * 1000
    earlier = value.created_ms - 5000
    set_times(redis, session.session_key, created=earlier)

    session["a"] = 2
    session.save()

    assert stored(redis, session.session_key).created_ms == earlier


def test_the_owner_of_a_logged_in_session_is_in_its_header(redis):
    session = saved_session({SESSION_KEY: "42", "a": 1})
    assert stored(redis, session.session_key).user_id == "42"

    del session[SESSION_KEY]
    session.save()

    assert stored(redis, session.session_key).user_id == ""
    assert index_entries(redis, "42") == {}


def test_a_value_is_smaller_than_its_json_when_sessions_share_words(redis):
    session = saved_session({SESSION_KEY: "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"})
    json_length = len(stored(redis, session.session_key).data)

    assert len(redis.get(redis_key(session.session_key))) < json_length + 50
    assert redis.get(redis_key(session.session_key))[35] & codec.COMPRESSED


def test_the_raw_session_id_appears_in_no_key_or_value(redis):
    session = saved_session({SESSION_KEY: "42", "a": "b"})
    session_id = session.session_key.encode()

    keys = list(redis.scan_iter())
    assert sorted(keys) == sorted(
        [redis_key(session.session_key).encode(), user_index_key("42").encode(), index_buckets_key().encode()]
    )
    for key in keys:
        assert session_id not in key
        if redis.type(key) == b"string":
            contents = [redis.get(key), stored(redis, session.session_key).data]
        elif redis.type(key) == b"hash":
            contents = [item for pair in redis.hgetall(key).items() for item in pair]
        else:
            contents = list(redis.smembers(key))
        assert contents
        assert all(session_id not in item for item in contents)


def test_every_key_expires(redis):
    saved_session({SESSION_KEY: "42"})
    saved_session({"a": 1}, expiry=60)

    keys = list(redis.scan_iter())

    # Two sessions, the user's index bucket and the list of buckets.
    assert len(keys) == 4
    assert all(redis.pttl(key) > 0 for key in keys)


@pytest.mark.parametrize("expiry", [None, 300, 7 * 86400])
def test_the_session_ttl_is_its_expiry_age_within_the_absolute_age(redis, expiry):
    session = saved_session({"a": 1}, expiry=expiry)

    ttl_ms = redis.pttl(redis_key(session.session_key))

    expected = min(session.get_expiry_age(), settings.SESSION_REDIS_ABSOLUTE_AGE)
    assert abs(ttl_ms - expected * 1000) <= 2000


def test_a_save_pushes_the_expiry_back(redis):
    session = saved_session({"a": 1})
    key = redis_key(session.session_key)
    redis.pexpire(key, 5000)

    session["a"] = 2
    session.save()

    assert abs(redis.pttl(key) - session.get_expiry_age() * 1000) <= 2000


def test_the_user_index_outlives_its_newest_entry_by_the_absolute_age_and_a_margin(redis, settings):
    saved_session({SESSION_KEY: "42"}, expiry=600)
    saved_session({SESSION_KEY: "42"}, expiry=timedelta(seconds=300))
    index_key = user_index_key("42")

    # No session filed then can be alive later than that (the absolute timeout is fixed at login).
    horizon = settings.SESSION_REDIS_ABSOLUTE_AGE * 1000 + index.NEW_ENTRY_MARGIN_MS
    newest = max(index_entries(redis, "42").values())
    assert abs(redis.pexpiretime(index_key) - (newest + horizon)) <= 1000


def test_a_save_keeps_what_another_request_wrote_meanwhile(redis, round_trips):
    session_key = saved_session({"a": 1, "b": 1}).session_key
    session = loaded_session(session_key)
    write_session_value(redis, session_key, "a", 100)
    write_session_value(redis, session_key, "other", "planted")

    session["b"] = 2
    with round_trips() as log:
        session.save()

    # The first try finds the session written meanwhile, the second puts this change on top.
    assert log.trips == [["EVALSHA"], ["EVALSHA"]]
    assert stored_data(redis, session_key) == {"a": 100, "b": 2, "other": "planted"}


def test_a_save_removes_only_the_keys_that_were_deleted(redis):
    session_key = saved_session({"a": 1, "b": 1}).session_key
    session = loaded_session(session_key)
    write_session_value(redis, session_key, "other", "planted")

    del session["a"]
    session.save()

    assert stored_data(redis, session_key) == {"b": 1, "other": "planted"}


def test_a_save_without_changes_writes_nothing(redis, round_trips):
    session_key = saved_session({"a": 1}).session_key
    session = loaded_session(session_key)
    write_session_value(redis, session_key, "a", 100)

    with round_trips() as log:
        session.modified = True
        session.save()

    assert len(log) == 0
    assert stored_data(redis, session_key) == {"a": 100}


def test_an_in_place_change_marked_modified_is_persisted():
    session = saved_session({"cart": {"items": [1]}})
    session["cart"]["items"].append(2)
    session.modified = True
    session.save()
    assert SessionStore(session.session_key).get("cart") == {"items": [1, 2]}

    other = loaded_session(session.session_key)
    other["cart"]["items"].append(3)
    other.modified = True
    other.save()

    assert SessionStore(session.session_key).get("cart") == {"items": [1, 2, 3]}


def test_clear_then_save_replaces_every_data_field(redis):
    session_key = saved_session({SESSION_KEY: "42", "a": 1}).session_key
    session = SessionStore(session_key)

    session.clear()
    session["new"] = 1
    session.save()

    assert stored_data(redis, session_key) == {"new": 1}
    assert stored(redis, session_key).user_id == ""
    assert index_entries(redis, "42") == {}


def test_clear_of_a_loaded_session_then_save_drops_keys_written_meanwhile(redis):
    session_key = saved_session({"a": 1}).session_key
    session = loaded_session(session_key)
    write_session_value(redis, session_key, "other", "planted")

    session.clear()
    session["new"] = 1
    session.save()

    assert SessionStore(session_key).load() == {"new": 1}


def test_a_pickle_payload_loads_as_an_empty_anonymous_session(redis, caplog):
    UNPICKLED.clear()
    session_key = saved_session({SESSION_KEY: "42"}).session_key
    payload = pickle.dumps(PicklePayload())
    raw = redis.get(redis_key(session_key))
    redis.set(redis_key(session_key), raw[: codec.data_offset(raw)] + payload, keepttl=True)

    with caplog.at_level(logging.WARNING, logger="django.security.SuspiciousSession"):
        session = SessionStore(session_key)
        assert session.get(SESSION_KEY) is None

    assert session.session_key is None
    assert list(session.items()) == []
    assert UNPICKLED == []
    warnings = [r for r in caplog.records if r.name == "django.security.SuspiciousSession"]
    assert ["corrupted" in r.getMessage() for r in warnings] == [True]
    pickle.loads(payload)
    assert UNPICKLED == ["unpickled"]


def test_save_must_create_on_a_taken_key_raises_create_error(redis):
    first = saved_session({"a": 1})
    before = redis.get(redis_key(first.session_key))
    second = SessionStore(first.session_key)

    with pytest.raises(CreateError):
        second.save(must_create=True)

    assert redis.get(redis_key(first.session_key)) == before


def test_a_cycled_key_found_taken_at_save_is_drawn_again(redis):
    session = saved_session({"a": 1})
    session.cycle_key()
    taken = session.session_key
    planted(taken, {"owner": "someone else"})

    session.save()

    assert session.session_key not in (None, taken)
    assert stored_data(redis, taken) == {"owner": "someone else"}
    assert SessionStore(session.session_key).load() == {"a": 1}


def test_a_logged_in_session_is_filed_under_its_user(redis):
    before = redis_ms(redis)
    session = saved_session({SESSION_KEY: "42"})

    filed = index_entries(redis, "42")[session_name(session.session_key)]

    # With when it was filed, by Redis's clock, in whole seconds.
    assert before // 1000 * 1000 <= filed <= redis_ms(redis)


def test_an_anonymous_session_is_filed_nowhere(redis):
    saved_session({"a": 1})

    assert redis.keys("sd:u*") == []


def test_a_logout_leaves_the_listing_at_once_and_the_index_once_surely_gone(redis):
    first = loaded_session(saved_session({SESSION_KEY: "42"}).session_key)
    second = saved_session({SESSION_KEY: "42"})

    # One command: the entry waits for a reader to find the session gone.
    first.delete()

    assert [info.name for info in SessionStore.user_sessions("42")] == [session_name(second.session_key)]
    file_in_index(redis, "42", {session_name(first.session_key): redis_ms(redis) - index.NEW_ENTRY_MARGIN_MS - 1})
    SessionStore.user_sessions("42")
    assert list(index_entries(redis, "42")) == [session_name(second.session_key)]


def test_a_session_deleted_by_id_leaves_the_listing_at_once_and_the_index_once_surely_gone(redis):
    first = saved_session({SESSION_KEY: "42"})
    second = saved_session({SESSION_KEY: "42"})

    # Whose session it was is unknown without a read: readers drop the entry instead.
    SessionStore().delete(first.session_key)

    assert [info.name for info in SessionStore.user_sessions("42")] == [session_name(second.session_key)]
    assert len(index_entries(redis, "42")) == 2
    file_in_index(redis, "42", {session_name(first.session_key): redis_ms(redis) - index.NEW_ENTRY_MARGIN_MS - 1})
    SessionStore.user_sessions("42")
    assert list(index_entries(redis, "42")) == [session_name(second.session_key)]


def test_a_session_that_changes_user_moves_its_index_entry(redis):
    session = saved_session({SESSION_KEY: "1"})
    name = session_name(session.session_key)

    session[SESSION_KEY] = "2"
    session.save()

    assert index_entries(redis, "1") == {}
    assert list(index_entries(redis, "2")) == [name]
    assert stored(redis, session.session_key).user_id == "2"


def test_end_user_sessions_ends_every_other_session_of_the_user(redis):
    kept, *others = [saved_session({SESSION_KEY: "7"}) for _ in range(3)]
    stranger = saved_session({SESSION_KEY: "8"})

    assert SessionStore.end_user_sessions(7, keep=kept.session_key) == 2

    assert kept.exists(kept.session_key) is True
    assert stranger.exists(stranger.session_key) is True
    assert [s.exists(s.session_key) for s in others] == [False, False]
    assert list(index_entries(redis, "7")) == [session_name(kept.session_key)]
    for session in others:
        session["a"] = 1
        with pytest.raises(UpdateError):
            session.save()
        assert session.exists(session.session_key) is False


def test_end_user_sessions_without_keep_ends_them_all(redis):
    sessions = [saved_session({SESSION_KEY: "7"}) for _ in range(2)]

    assert SessionStore.end_user_sessions("7") == 2

    assert redis.keys() == [index_buckets_key().encode()]
    assert SessionStore.end_user_sessions("7") == 0
    assert [s.exists(s.session_key) for s in sessions] == [False, False]


def test_clear_expired_prunes_entries_of_ended_sessions_filed_before_the_margin(redis):
    live = saved_session({SESSION_KEY: "1"})
    vanished = saved_session({SESSION_KEY: "1"})
    redis.delete(redis_key(vanished.session_key))
    old = redis_ms(redis) - index.NEW_ENTRY_MARGIN_MS - 1
    file_in_index(redis, "1", {session_name(vanished.session_key): old, no_session("e"): old})
    file_in_index(redis, "2", {no_session("f"): old})

    report = SessionStore.clear_expired()

    assert (report.indexes_scanned, report.entries_pruned, report.indexes_removed) == (2, 3, 1)
    assert "pruned 3" in str(report)
    assert list(index_entries(redis, "1")) == [session_name(live.session_key)]
    assert index_entries(redis, "2") == {}
    assert live.exists(live.session_key) is True
    again = SessionStore.clear_expired()
    assert (again.indexes_scanned, again.entries_pruned, again.indexes_removed) == (1, 0, 0)


def test_clear_expired_leaves_entries_filed_within_the_margin(redis):
    # An entry may reach its index before its session reaches Redis (another
    # Cluster node): a reader that saw the session missing must not drop it.
    file_in_index(redis, "1", {no_session("e"): redis_ms(redis) - 1000})

    report = SessionStore.clear_expired()

    assert report.entries_pruned == 0
    assert list(index_entries(redis, "1")) == [no_session("e")]


def test_entries_past_the_horizon_are_dropped_whenever_the_index_is_listed(redis, settings):
    user = "9"
    long_ago = redis_ms(redis) - settings.SESSION_REDIS_ABSOLUTE_AGE * 1000 - index.NEW_ENTRY_MARGIN_MS - 1
    file_in_index(redis, user, {no_session("e"): long_ago})
    live = saved_session({SESSION_KEY: user})

    assert [info.name for info in SessionStore.user_sessions(user)] == [session_name(live.session_key)]
    assert list(index_entries(redis, user)) == [session_name(live.session_key)]
    assert index_count(redis, user) == 1


def test_clear_expired_reaches_every_index_across_scan_batches(redis):
    old = redis_ms(redis) - index.NEW_ENTRY_MARGIN_MS - 1
    # Seven users in seven buckets.
    for user_id in range(0, 7 * USERS_PER_BUCKET, USERS_PER_BUCKET):
        file_in_index(redis, user_id, {no_session("e"): old})
    redis.set("sd:u:not-an-index", "x")

    report = protocol.run(index.prune_all(cluster=False, batch_size=2))

    assert (report.indexes_scanned, report.entries_pruned, report.indexes_removed) == (7, 7, 7)
    assert redis.keys("sd:u:*") == [b"sd:u:not-an-index"]


def test_saves_survive_a_script_flush(redis, round_trips):
    session = saved_session({SESSION_KEY: "42", "a": 1})
    redis.script_flush()

    session["a"] = 2
    with round_trips() as log:
        session.save()

    # An update leaves the user index alone: its score does not change.
    assert log.trips == [["EVALSHA"], ["EVAL"]]
    assert SessionStore(session.session_key).get("a") == 2
    assert session_name(session.session_key) in index_entries(redis, "42")
    session["a"] = 3
    with round_trips() as log:
        session.save()
    assert log.trips == [["EVALSHA"]]


def test_creates_and_deletes_survive_a_script_flush(redis):
    redis.script_flush()
    session = saved_session({SESSION_KEY: "42"})
    assert session.exists(session.session_key) is True

    redis.script_flush()
    session.delete()

    assert redis.exists(redis_key(session.session_key)) == 0


def test_load_costs_one_round_trip(round_trips):
    session_key = saved_session({"a": 1}).session_key

    with round_trips() as log:
        assert SessionStore(session_key).get("a") == 1

    assert log.trips == [["GETEX", "PEXPIRETIME"]]


def test_a_save_of_a_loaded_session_costs_one_round_trip(round_trips):
    session = loaded_session(saved_session({SESSION_KEY: "42"}).session_key)
    session["a"] = 1

    with round_trips() as log:
        session.save()

    assert len(log) == 1


@pytest.mark.parametrize("data", [{}, {"a": 1}, {SESSION_KEY: "42"}])
def test_create_costs_one_round_trip(round_trips, data):
    session = SessionStore()
    session.update(data)

    with round_trips() as log:
        session.save()

    assert len(log) == 1
    assert SessionStore(session.session_key).load() == data


@pytest.mark.parametrize("data", [{"a": 1}, {SESSION_KEY: "42"}])
def test_a_delete_of_a_loaded_session_costs_one_round_trip(redis, round_trips, data):
    session = loaded_session(saved_session(data).session_key)

    with round_trips() as log:
        session.delete()

    assert len(log) == 1
    assert redis.keys("sd:s:*") == []


def test_cycle_key_of_a_loaded_session_costs_nothing_and_its_save_one(redis, round_trips):
    old_key = saved_session({SESSION_KEY: "42"}).session_key
    session = loaded_session(old_key)

    with round_trips() as log:
        session.cycle_key()
    assert len(log) == 0
    assert session.exists(old_key) is False

    with round_trips() as log:
        session.save()
    assert len(log) == 1
    # The one round trip created the new hash and deleted the old one.
    assert redis.exists(redis_key(old_key)) == 0
    assert redis.exists(redis_key(session.session_key)) == 1
    assert session_name(session.session_key) in index_entries(redis, "42")


def test_exists_costs_one_round_trip(round_trips):
    session_key = saved_session({"a": 1}).session_key

    with round_trips() as log:
        assert SessionStore().exists(session_key) is True

    assert log.trips == [["EXISTS"]]


@pytest.mark.parametrize("key", ["12345678", "x" * 40, "A" * 32])
def test_an_invalid_key_costs_nothing(round_trips, key):
    with round_trips() as log:
        session = SessionStore(key)
        session.get("a")
        session.exists(key)
        session.delete(key)
        session.load()
        session.flush()

    assert len(log) == 0


def test_calls_queued_for_the_next_write_ride_in_its_round_trip(redis, round_trips):
    session = loaded_session(saved_session({"a": 1}).session_key)
    session.run_with_next_write([scripts.Command(("SET", "sd:t:marker", "1"))])
    session["a"] = 2

    with round_trips() as log:
        session.save()

    assert len(log) == 1
    assert redis.get("sd:t:marker") == b"1"
    with round_trips() as log:
        session.run_pending_calls()
    assert len(log) == 0


def test_calls_queued_without_a_write_are_sent_on_their_own(redis, round_trips):
    session = loaded_session(saved_session({"a": 1}).session_key)
    session.run_with_next_write([scripts.Command(("SET", "sd:t:marker", "1"))])

    with round_trips() as log:
        session.run_pending_calls()

    assert len(log) == 1
    assert redis.get("sd:t:marker") == b"1"


@pytest.mark.parametrize(
    "command",
    [("EVALSHA", "0" * 40, 1, "sd:s:{abcd}x", b"\x00\xff\r\n", 12), ("GETDEL", "k"), ("SET", "k", "é", "PX", 5)],
)
def test_without_hiredis_the_engine_packs_commands_as_hiredis_does(command):
    hiredis = pytest.importorskip("hiredis")

    assert connection._pack_in_python(command) == hiredis.pack_command(command)


def test_a_save_after_a_create_in_the_same_request_keeps_the_times_redis_gave_it(redis):
    session = saved_session({SESSION_KEY: "42"})
    created = stored(redis, session.session_key)

    session["more"] = 1
    session.save()

    again = stored(redis, session.session_key)
    assert (again.created_ms, again.deadline_ms, again.issued_ms) == (
        created.created_ms,
        created.deadline_ms,
        created.issued_ms,
    )
    assert created.created_ms > 0
    assert SessionStore(session.session_key).load() == {SESSION_KEY: "42", "more": 1}


def test_a_save_after_a_read_keeps_the_times_and_the_ttl_within_the_absolute_timeout(redis, settings):
    session_key = saved_session({SESSION_KEY: "42"}).session_key
    created = stored(redis, session_key)
    # 100 s of its absolute lifetime left.
    set_times(redis, session_key, created=redis_ms(redis) - (settings.SESSION_REDIS_ABSOLUTE_AGE - 100) * 1000)
    before = stored(redis, session_key)
    session = SessionStore(session_key)

    session["more"] = 1
    session.save()

    after = stored(redis, session_key)
    assert (after.created_ms, after.deadline_ms, after.issued_ms) == (
        before.created_ms,
        before.deadline_ms,
        before.issued_ms,
    )
    assert before.created_ms != created.created_ms
    assert 0 < redis.pttl(redis_key(session_key)) <= 100_000


def test_the_index_counts_its_entries_through_logouts_listings_and_clearsessions(redis):
    first, second, third = (saved_session({SESSION_KEY: "42"}) for _ in range(3))
    assert index_count(redis, "42") == 3
    old = redis_ms(redis) - index.NEW_ENTRY_MARGIN_MS - 1

    # A logout leaves its entry: the count still holds it.
    loaded_session(first.session_key).delete()
    assert (len(index_entries(redis, "42")), index_count(redis, "42")) == (3, 3)
    # clearsessions drops it once it is old enough to be sure, and the count follows.
    file_in_index(redis, "42", {session_name(first.session_key): old})
    SessionStore.clear_expired()
    assert set(index_entries(redis, "42")) == {session_name(s.session_key) for s in (second, third)}
    assert index_count(redis, "42") == 2
    # So does a listing.
    loaded_session(second.session_key).delete()
    file_in_index(redis, "42", {session_name(second.session_key): old})
    assert [info.name for info in SessionStore.user_sessions("42")] == [session_name(third.session_key)]
    assert index_count(redis, "42") == 1
    # Ending the last one leaves no count behind.
    SessionStore.end_user_sessions("42")
    assert (index_entries(redis, "42"), index_count(redis, "42")) == ({}, 0)
    assert redis.hgetall(user_index_key("42")) == {}


def test_clearsessions_adopts_an_index_in_the_previous_layout_once(redis):
    """Sessions filed before an upgrade stay listed, capped and ended through the index."""
    sessions = [saved_session({SESSION_KEY: "42"}) for _ in range(2)]
    redis.delete(user_index_key("42"))
    # As the engine filed them before: a field per user of 32-byte entries.
    filed = redis_ms(redis) - 5000
    packed = b"".join(session_name(s.session_key).encode() + filed.to_bytes(6, "big") for s in sessions)
    redis.hset("sd:i:0", "42", packed)
    redis.sadd("sd:i", "sd:i:0")

    SessionStore.clear_expired()

    assert set(index_entries(redis, "42")) == {session_name(s.session_key) for s in sessions}
    assert index_count(redis, "42") == 2
    assert redis.exists("sd:i:0", "sd:i") == 0
    assert len(SessionStore.user_sessions("42")) == 2
    SessionStore.end_user_sessions("42")
    assert all(not SessionStore().exists(s.session_key) for s in sessions)
