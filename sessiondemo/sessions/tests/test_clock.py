"""Redis's clock, as the engine keeps it to stamp new sessions without a script (clock.py)."""

import time

import pytest
from django.contrib.auth import SESSION_KEY

from sessiondemo.sessions import clock
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.connection import get_client
from sessiondemo.testing.web import index_entries, redis_ms, stored


def new_session(data):
    session = SessionStore()
    session.update(data)
    session.create()
    return session


def forget_readings():
    clock.forget(get_client())


@pytest.fixture(autouse=True)
def own_readings():
    """Each test starts and leaves with no reading: some move the monotonic clock."""
    forget_readings()
    yield
    forget_readings()


def test_a_process_that_never_read_redis_asks_its_time_once(redis, round_trips):
    with round_trips() as first:
        new_session({"a": 1})
    with round_trips() as second:
        new_session({"a": 2})

    assert first.trips == [["TIME"], ["SET"]]
    assert second.trips == [["SET"]]


def test_a_read_keeps_the_clock_fresh(redis, round_trips, monkeypatch):
    session = new_session({"a": 1})
    later = time.monotonic() + clock.FRESH_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    SessionStore(session.session_key).load()

    with round_trips() as log:
        new_session({"a": 2})

    assert log.trips == [["SET"]]


def test_a_stale_reading_is_taken_again(redis, round_trips, monkeypatch):
    new_session({"a": 1})
    later = time.monotonic() + clock.FRESH_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)

    with round_trips() as log:
        new_session({"a": 2})

    assert log.trips == [["TIME"], ["SET"]]


def test_new_sessions_and_their_entries_are_stamped_by_redis_within_the_reading(redis):
    new_session({"warm": 1})
    # Redis's clock, read by another client around the create.
    before = redis_ms(redis)
    session = new_session({SESSION_KEY: "42"})
    after = redis_ms(redis)

    value = stored(redis, session.session_key)
    [filed] = index_entries(redis, "42").values()
    assert before - 2 <= value.created_ms == value.issued_ms <= after + 2
    assert filed == value.created_ms // 1000 * 1000  # whole seconds


def test_a_slow_reading_is_not_kept(redis):
    client = get_client()
    clock.observe(client, 1, 0.0, clock.MAX_ROUND_TRIP_SECONDS + 1)

    assert abs(clock.now_ms(client) - redis_ms(redis)) < 1000
