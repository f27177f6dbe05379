"""Django 6.1's session backend contract (SessionTestsMixin), stated for the Redis engine."""

import base64
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.utils import timezone

from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import new_session_id
from sessiondemo.testing.web import redis_key


def run(scenario):
    """Run the coroutine function ``scenario`` to completion from a sync test."""
    return async_to_sync(scenario)()


WELL_FORMED_UNKNOWN_KEY = "0123456789abcdefghijklmnopqrstuv"


def unknown_key():
    """Return an id this server would issue, that no session has."""
    return new_session_id()


@pytest.fixture
def session():
    store = SessionStore()
    yield store
    store.delete()


def test_new_session(session):
    assert session.modified is False
    assert session.accessed is False


def test_get_empty(session):
    assert session.get("cat") is None


def test_get_empty_async(session):
    async def scenario():
        assert await session.aget("cat") is None

    run(scenario)


def test_store(session):
    session["cat"] = "dog"
    assert session.modified is True
    assert session.pop("cat") == "dog"


def test_store_async(session):
    async def scenario():
        await session.aset("cat", "dog")
        assert session.modified is True
        assert await session.apop("cat") == "dog"

    run(scenario)


def test_pop(session):
    session["some key"] = "exists"
    session.accessed = False
    session.modified = False

    assert session.pop("some key") == "exists"
    assert session.accessed is True
    assert session.modified is True
    assert session.get("some key") is None


def test_pop_async(session):
    async def scenario():
        await session.aset("some key", "exists")
        session.accessed = False
        session.modified = False

        assert await session.apop("some key") == "exists"
        assert session.accessed is True
        assert session.modified is True
        assert await session.aget("some key") is None

    run(scenario)


def test_pop_default(session):
    assert session.pop("some key", "does not exist") == "does not exist"
    assert session.accessed is True
    assert session.modified is False


def test_pop_default_async(session):
    async def scenario():
        assert await session.apop("some key", "does not exist") == "does not exist"
        assert session.accessed is True
        assert session.modified is False

    run(scenario)


def test_pop_default_named_argument(session):
    assert session.pop("some key", default="does not exist") == "does not exist"
    assert session.accessed is True
    assert session.modified is False


def test_pop_default_named_argument_async(session):
    async def scenario():
        assert await session.apop("some key", default="does not exist") == "does not exist"
        assert session.accessed is True
        assert session.modified is False

    run(scenario)


def test_pop_no_default_keyerror_raised(session):
    with pytest.raises(KeyError):
        session.pop("some key")


def test_pop_no_default_keyerror_raised_async(session):
    async def scenario():
        with pytest.raises(KeyError):
            await session.apop("some key")

    run(scenario)


def test_setdefault(session):
    assert session.setdefault("foo", "bar") == "bar"
    assert session.setdefault("foo", "baz") == "bar"
    assert session.accessed is True
    assert session.modified is True


def test_setdefault_async(session):
    async def scenario():
        assert await session.asetdefault("foo", "bar") == "bar"
        assert await session.asetdefault("foo", "baz") == "bar"
        assert session.accessed is True
        assert session.modified is True

    run(scenario)


def test_update(session):
    session.update({"update key": 1})
    assert session.accessed is True
    assert session.modified is True
    assert session.get("update key", None) == 1


def test_update_async(session):
    async def scenario():
        await session.aupdate({"update key": 1})
        assert session.accessed is True
        assert session.modified is True
        assert await session.aget("update key", None) == 1

    run(scenario)


def test_has_key(session):
    session["some key"] = 1
    session.modified = False
    session.accessed = False

    assert "some key" in session
    assert session.has_key("some key") is True
    assert session.has_key("other key") is False
    assert session.accessed is True
    assert session.modified is False


def test_has_key_async(session):
    async def scenario():
        await session.aset("some key", 1)
        session.modified = False
        session.accessed = False

        assert await session.ahas_key("some key") is True
        assert await session.ahas_key("other key") is False
        assert session.accessed is True
        assert session.modified is False

    run(scenario)


def test_values(session):
    assert list(session.values()) == []
    assert session.accessed is True
    session["some key"] = 1
    session.modified = False
    session.accessed = False

    assert list(session.values()) == [1]
    assert session.accessed is True
    assert session.modified is False


def test_values_async(session):
    async def scenario():
        assert list(await session.avalues()) == []
        assert session.accessed is True
        await session.aset("some key", 1)
        session.modified = False
        session.accessed = False

        assert list(await session.avalues()) == [1]
        assert session.accessed is True
        assert session.modified is False

    run(scenario)


def test_keys(session):
    session["x"] = 1
    session.modified = False
    session.accessed = False

    assert list(session.keys()) == ["x"]
    assert session.accessed is True
    assert session.modified is False


def test_keys_async(session):
    async def scenario():
        await session.aset("x", 1)
        session.modified = False
        session.accessed = False

        assert list(await session.akeys()) == ["x"]
        assert session.accessed is True
        assert session.modified is False

    run(scenario)


def test_items(session):
    session["x"] = 1
    session.modified = False
    session.accessed = False

    assert list(session.items()) == [("x", 1)]
    assert session.accessed is True
    assert session.modified is False


def test_items_async(session):
    async def scenario():
        await session.aset("x", 1)
        session.modified = False
        session.accessed = False

        assert list(await session.aitems()) == [("x", 1)]
        assert session.accessed is True
        assert session.modified is False

    run(scenario)


def test_clear(session):
    session["x"] = 1
    session.modified = False
    session.accessed = False
    assert list(session.items()) == [("x", 1)]

    session.clear()

    assert list(session.items()) == []
    assert session.accessed is True
    assert session.modified is True


def test_save(session):
    session.save()

    assert session.exists(session.session_key) is True


def test_save_async(session):
    async def scenario():
        await session.asave()
        assert await session.aexists(session.session_key) is True

    run(scenario)


def test_delete(session):
    session.save()
    session.delete(session.session_key)

    assert session.exists(session.session_key) is False


def test_delete_async(session):
    async def scenario():
        await session.asave()
        await session.adelete(session.session_key)
        assert await session.aexists(session.session_key) is False

    run(scenario)


def test_flush(session):
    session["foo"] = "bar"
    session.save()
    prev_key = session.session_key

    session.flush()

    assert session.exists(prev_key) is False
    assert session.session_key != prev_key
    assert session.session_key is None
    assert session.modified is True
    assert session.accessed is True


def test_flush_async(session):
    async def scenario():
        await session.aset("foo", "bar")
        await session.asave()
        prev_key = session.session_key

        await session.aflush()

        assert await session.aexists(prev_key) is False
        assert session.session_key is None
        assert session.modified is True
        assert session.accessed is True

    run(scenario)


def test_cycle(session):
    session["a"], session["b"] = "c", "d"
    session.save()
    prev_key = session.session_key
    prev_data = list(session.items())

    session.cycle_key()

    assert session.exists(prev_key) is False
    assert session.session_key != prev_key
    session.save()
    assert list(session.items()) == prev_data
    assert SessionStore(session.session_key).load() == dict(prev_data)


def test_cycle_async(session):
    async def scenario():
        await session.aset("a", "c")
        await session.aset("b", "d")
        await session.asave()
        prev_key = session.session_key
        prev_data = list(await session.aitems())

        await session.acycle_key()
        await session.asave()

        assert await session.aexists(prev_key) is False
        assert session.session_key != prev_key
        assert list(await session.aitems()) == prev_data
        assert await SessionStore(session.session_key).aload() == dict(prev_data)

    run(scenario)


def test_cycle_with_no_session_cache(session):
    session["a"], session["b"] = "c", "d"
    session.save()
    prev_data = list(session.items())
    session = SessionStore(session.session_key)
    assert hasattr(session, "_session_cache") is False

    session.cycle_key()

    assert sorted(session.items()) == sorted(prev_data)


def test_cycle_with_no_session_cache_async(session):
    async def scenario():
        await session.aset("a", "c")
        await session.aset("b", "d")
        await session.asave()
        prev_data = list(await session.aitems())
        fresh = SessionStore(session.session_key)
        assert hasattr(fresh, "_session_cache") is False

        await fresh.acycle_key()

        assert sorted(await fresh.aitems()) == sorted(prev_data)

    run(scenario)


def test_save_doesnt_clear_data(session):
    session["a"] = "b"
    session.save()

    assert session["a"] == "b"


def test_save_doesnt_clear_data_async(session):
    async def scenario():
        await session.aset("a", "b")
        await session.asave()
        assert await session.aget("a") == "b"

    run(scenario)


@pytest.mark.parametrize("key", ["1", "someunknownkey", WELL_FORMED_UNKNOWN_KEY])
def test_invalid_key(key):
    """Replace a key the store does not hold, guessed or well-formed, by a new one."""
    session = SessionStore(key)

    session.save()

    assert session.session_key is not None
    assert session.session_key != key
    assert session.exists(session.session_key) is True
    assert session.exists(key) is False
    assert session.get("cat") is None


@pytest.mark.parametrize("key", ["1", "someunknownkey", WELL_FORMED_UNKNOWN_KEY])
def test_invalid_key_async(key):
    async def scenario():
        session = SessionStore(key)
        await session.asave()
        assert session.session_key not in (None, key)
        assert await session.aexists(session.session_key) is True
        assert await session.aexists(key) is False
        assert await session.aget("cat") is None

    run(scenario)


def test_session_key_valid_string_saved():
    """Strings of length 8 and up are accepted and stored (Django's own contract)."""
    session = SessionStore()
    session._session_key = "12345678"

    assert session.session_key == "12345678"


def test_session_key_too_short_invalid():
    session = SessionStore()
    session._session_key = "1234567"

    assert session.session_key is None


@pytest.mark.parametrize(
    "key",
    [
        "12345678",
        "someunknownkey",
        "a" * 31,
        "a" * 33,
        "A" * 32,
        "a" * 31 + "-",
        "a" * 31 + "\u00e9",
        "a" * 31 + "\n",
        WELL_FORMED_UNKNOWN_KEY,
    ],
)
def test_a_key_this_server_did_not_issue_costs_redis_nothing(key, redis, round_trips):
    """Answer any key but an id this engine issued (format and check characters) without Redis."""
    redis.hset(redis_key(key), "d:cat", '"dog"')

    with round_trips() as log:
        session = SessionStore(key)
        assert session.get("cat") is None
        assert session.session_key is None
        assert session.load() == {}
        assert session.exists(key) is False
        session.delete(key)

    assert len(log) == 0
    assert redis.hget(redis_key(key), "d:cat") == b'"dog"'


def test_session_key_in_the_engine_format_is_accepted():
    key = unknown_key()

    assert SessionStore(key).session_key == key


def test_session_key_is_read_only(session):
    with pytest.raises(AttributeError):
        session.session_key = session._get_new_session_key()


def test_default_expiry(session):
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE

    session.set_expiry(0)

    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_default_expiry_async(session):
    async def scenario():
        assert await session.aget_expiry_age() == settings.SESSION_COOKIE_AGE
        await session.aset_expiry(0)
        assert await session.aget_expiry_age() == settings.SESSION_COOKIE_AGE

    run(scenario)


def test_custom_expiry_seconds(session):
    modification = timezone.now()

    session.set_expiry(10)

    date = session.get_expiry_date(modification=modification)
    assert date == modification + timedelta(seconds=10)
    assert session.get_expiry_age(modification=modification) == 10


def test_custom_expiry_seconds_async(session):
    async def scenario():
        modification = timezone.now()
        await session.aset_expiry(10)
        date = await session.aget_expiry_date(modification=modification)
        assert date == modification + timedelta(seconds=10)
        assert await session.aget_expiry_age(modification=modification) == 10

    run(scenario)


def test_custom_expiry_timedelta(session, monkeypatch):
    modification = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: modification)

    session.set_expiry(timedelta(seconds=10))

    date = session.get_expiry_date(modification=modification)
    assert date == modification + timedelta(seconds=10)
    assert session.get_expiry_age(modification=modification) == 10


def test_custom_expiry_timedelta_async(session, monkeypatch):
    modification = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: modification)

    async def scenario():
        await session.aset_expiry(timedelta(seconds=10))
        date = await session.aget_expiry_date(modification=modification)
        assert date == modification + timedelta(seconds=10)
        assert await session.aget_expiry_age(modification=modification) == 10

    run(scenario)


def test_custom_expiry_datetime(session):
    modification = timezone.now()

    session.set_expiry(modification + timedelta(seconds=10))

    date = session.get_expiry_date(modification=modification)
    assert date == modification + timedelta(seconds=10)
    assert session.get_expiry_age(modification=modification) == 10


def test_custom_expiry_datetime_async(session):
    async def scenario():
        modification = timezone.now()
        await session.aset_expiry(modification + timedelta(seconds=10))
        date = await session.aget_expiry_date(modification=modification)
        assert date == modification + timedelta(seconds=10)
        assert await session.aget_expiry_age(modification=modification) == 10

    run(scenario)


def test_custom_expiry_reset(session):
    session.set_expiry(None)
    session.set_expiry(10)
    session.set_expiry(None)

    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_custom_expiry_reset_async(session):
    async def scenario():
        await session.aset_expiry(None)
        await session.aset_expiry(10)
        await session.aset_expiry(None)
        assert await session.aget_expiry_age() == settings.SESSION_COOKIE_AGE

    run(scenario)


@pytest.mark.parametrize("at_browser_close", [False, True])
def test_get_expire_at_browser_close(session, settings, at_browser_close):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = at_browser_close

    session.set_expiry(10)
    assert session.get_expire_at_browser_close() is False

    session.set_expiry(0)
    assert session.get_expire_at_browser_close() is True

    session.set_expiry(None)
    assert session.get_expire_at_browser_close() is at_browser_close


@pytest.mark.parametrize("at_browser_close", [False, True])
def test_get_expire_at_browser_close_async(session, settings, at_browser_close):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = at_browser_close

    async def scenario():
        await session.aset_expiry(10)
        assert await session.aget_expire_at_browser_close() is False
        await session.aset_expiry(0)
        assert await session.aget_expire_at_browser_close() is True
        await session.aset_expiry(None)
        assert await session.aget_expire_at_browser_close() is at_browser_close

    run(scenario)


def test_decode(session):
    data = {"a test key": "a test value"}

    assert session.decode(session.encode(data)) == data


def test_decode_failure_logged_to_security(session, caplog):
    bad_encode = base64.b64encode(b"flaskdj:alkdjf").decode("ascii")

    with caplog.at_level("WARNING", logger="django.security.SuspiciousSession"):
        assert session.decode(bad_encode) == {}

    assert [r.name for r in caplog.records] == ["django.security.SuspiciousSession"]
    assert "corrupted" in caplog.records[0].getMessage()


@pytest.mark.parametrize("expiry", [-timedelta(seconds=10), -10])
def test_actual_expiry(session, expiry):
    session["foo"] = "bar"
    session.set_expiry(expiry)
    session.save()
    old_key = session.session_key

    new_session = SessionStore(old_key)

    assert "foo" not in new_session
    assert new_session.session_key is None
    assert session.exists(old_key) is False


def test_actual_expiry_async(session):
    async def scenario():
        await session.aset("foo", "bar")
        await session.aset_expiry(-timedelta(seconds=10))
        await session.asave()
        old_key = session.session_key

        new_session = SessionStore(old_key)
        assert await new_session.ahas_key("foo") is False
        assert new_session.session_key is None
        assert await session.aexists(old_key) is False

    run(scenario)


def test_session_load_does_not_create_record(redis):
    """Load an unknown session key without creating a session record (a DoS vector)."""
    key = unknown_key()
    session = SessionStore(key)

    assert session.load() == {}

    assert session.session_key is None
    assert session.exists(key) is False
    assert redis.dbsize() == 0


def test_session_load_does_not_create_record_async(redis):
    async def scenario():
        key = unknown_key()
        session = SessionStore(key)
        assert await session.aload() == {}
        assert session.session_key is None
        assert await session.aexists(key) is False

    run(scenario)
    assert redis.dbsize() == 0


def test_session_save_does_not_resurrect_session_logged_out_in_other_context():
    s1 = SessionStore()
    s1["test_data"] = "value1"
    s1.save(must_create=True)
    s2 = SessionStore(s1.session_key)
    s2.delete()

    s1["test_data"] = "value2"
    with pytest.raises(UpdateError):
        s1.save()

    assert s1.exists(s1.session_key) is False
    assert s1.load() == {}


def test_session_save_does_not_resurrect_session_logged_out_in_other_context_async():
    async def scenario():
        s1 = SessionStore()
        await s1.aset("test_data", "value1")
        await s1.asave(must_create=True)
        s2 = SessionStore(s1.session_key)
        await s2.adelete()

        await s1.aset("test_data", "value2")
        with pytest.raises(UpdateError):
            await s1.asave()

        assert await s1.aexists(s1.session_key) is False
        assert await s1.aload() == {}

    run(scenario)


def test_bool(session):
    assert bool(session) is False

    session["x"] = 1
    assert bool(session) is True

    session.save()
    assert bool(SessionStore(session.session_key)) is True

    session.flush()
    assert bool(session) is False


def test_bool_of_a_rejected_key_is_false_once_loaded():
    session = SessionStore("12345678")

    assert session.get("x") is None

    assert bool(session) is False


def test_bool_of_a_vanished_key_is_false_once_loaded():
    session = SessionStore(unknown_key())

    assert session.get("x") is None

    assert bool(session) is False
