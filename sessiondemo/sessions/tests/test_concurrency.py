"""Concurrent requests on one session, each with its own SessionStore, in real threads."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import UpdateError

from sessiondemo.sessions.backend import SessionStore
from sessiondemo.testing.web import redis_key

THREADS = 8
ROUNDS = 50
BARRIER_TIMEOUT = 30


def new_session(data):
    session = SessionStore()
    session.update(data)
    session.save()
    return session.session_key


def run_in_threads(worker, count):
    """Run ``worker(i)`` for i in range(count), each in its own thread; return the results."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(worker, i) for i in range(count)]
        return [future.result() for future in futures]


def test_concurrent_saves_of_different_keys_lose_no_update():
    session_key = new_session({"shared": True})
    barrier = threading.Barrier(THREADS, timeout=BARRIER_TIMEOUT)

    def worker(i):
        for round_number in range(ROUNDS):
            barrier.wait()
            session = SessionStore(session_key)
            session.keys()
            barrier.wait()
            session[f"t{i}"] = round_number
            session.save()
            assert session.session_key == session_key

    run_in_threads(worker, THREADS)

    expected = {"shared": True} | {f"t{i}": ROUNDS - 1 for i in range(THREADS)}
    assert SessionStore(session_key).load() == expected


def test_a_save_after_a_delete_raises_update_error_and_does_not_resurrect(redis):
    session_key = new_session({SESSION_KEY: "42", "a": 1})
    session = SessionStore(session_key)
    session["a"] = 2

    SessionStore(session_key).delete()
    with pytest.raises(UpdateError):
        session.save()

    assert redis.exists(redis_key(session_key)) == 0
    assert SessionStore.user_sessions("42") == []


def test_saves_racing_a_delete_all_raise_update_error_and_the_session_stays_gone(redis):
    session_key = new_session({SESSION_KEY: "42", "a": 0})
    barrier = threading.Barrier(THREADS + 1, timeout=BARRIER_TIMEOUT)

    def writer(i):
        session = SessionStore(session_key)
        assert session.get("a") == 0
        barrier.wait()
        barrier.wait()
        session[f"t{i}"] = i
        with pytest.raises(UpdateError):
            session.save()

    def deleter(_):
        barrier.wait()
        SessionStore(session_key).delete()
        barrier.wait()

    run_in_threads(lambda i: writer(i) if i < THREADS else deleter(i), THREADS + 1)

    assert redis.exists(redis_key(session_key)) == 0
    assert SessionStore.user_sessions("42") == []
    assert SessionStore(session_key).load() == {}


def test_a_delete_amid_concurrent_writers_ends_the_session_for_good(redis):
    session_key = new_session({SESSION_KEY: "42"})
    delete_round = ROUNDS // 2
    barrier = threading.Barrier(THREADS + 1, timeout=BARRIER_TIMEOUT)

    def writer(i):
        outcomes = []
        for round_number in range(ROUNDS):
            barrier.wait()
            session = SessionStore(session_key)
            loaded = dict(session.items())
            barrier.wait()
            barrier.wait()
            if session.session_key is None:
                outcomes.append(("gone", loaded))
                continue
            session[f"t{i}"] = round_number
            try:
                session.save()
            except UpdateError:
                outcomes.append(("update error", round_number))
            else:
                outcomes.append(("saved", round_number))
        return outcomes

    def deleter(_):
        for round_number in range(ROUNDS):
            barrier.wait()
            barrier.wait()
            if round_number == delete_round:
                SessionStore(session_key).delete()
            barrier.wait()

    results = run_in_threads(lambda i: writer(i) if i < THREADS else deleter(i), THREADS + 1)

    expected = (
        [("saved", r) for r in range(delete_round)]
        + [("update error", delete_round)]
        + [("gone", {})] * (ROUNDS - delete_round - 1)
    )
    assert results[:THREADS] == [expected] * THREADS
    assert redis.exists(redis_key(session_key)) == 0
    assert SessionStore.user_sessions("42") == []
