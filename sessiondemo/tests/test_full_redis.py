"""
A full Redis: maxmemory reached with ``noeviction``, what the README recommends.

Redis then refuses every command that could grow memory. For the site that is
a store outage for anything that must write (a login, a wrong password that
must be counted, a change to a session): 503 with Retry-After, one log record,
and nothing half-written, throttle counters included. What needs no new
memory keeps working: reading a session, logging out.
"""

import logging

import pytest
from redis import exceptions as redis_errors
from django.conf import settings
from django.test import Client

from sessiondemo.testing.web import assert_unavailable, log_in, redis_key, submit_login

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture
def full_redis(redis):
    """Return a function that makes the suite's Redis full until the test ends."""

    def fill():
        # Any memory in use is over a 1-byte limit: every write that could grow memory is refused.
        redis.config_set("maxmemory", 1)
        with pytest.raises(redis_errors.OutOfMemoryError):
            redis.set("probe", "x")

    yield fill
    redis.config_set("maxmemory", 0)


def everything(redis):
    return {key: redis.dump(key) for key in redis.scan_iter()}


def errors_logged(caplog):
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_login_on_a_full_redis_is_a_503_and_writes_nothing(user, password, redis, full_redis, caplog):
    client = Client(raise_request_exception=False)
    full_redis()
    before = everything(redis)

    with caplog.at_level(logging.INFO):
        response = submit_login(client, user, password)

    assert_unavailable(response)
    assert everything(redis) == before
    [record] = errors_logged(caplog)
    assert record.name == "sessiondemo.sessions"


def test_a_wrong_password_on_a_full_redis_is_a_503_and_counts_nothing(user, redis, full_redis, caplog):
    client = Client(raise_request_exception=False)
    full_redis()
    before = everything(redis)

    with caplog.at_level(logging.INFO):
        response = submit_login(client, user, "not the password")

    assert_unavailable(response)
    assert everything(redis) == before
    assert len(errors_logged(caplog)) == 1


def test_a_logged_in_visitor_keeps_reading_pages_and_can_log_out(user, password, redis, full_redis):
    client = Client(raise_request_exception=False)
    session_id = log_in(client, user, password)
    full_redis()

    response = client.get("/profile/", secure=True)
    assert response.status_code == 200
    assert user.username in response.text
    assert client.get("/accounts/sessions/", secure=True).status_code == 200

    logout = client.post("/accounts/logout/", secure=True)
    assert logout.status_code == 302
    assert redis.exists(redis_key(session_id)) == 0
    assert client.get("/profile/", secure=True).status_code == 302


def test_a_change_to_the_session_on_a_full_redis_is_a_503_and_changes_nothing(
    user, password, redis, full_redis, caplog
):
    client = Client(raise_request_exception=False)
    session_id = log_in(client, user, password)
    stored = redis.get(redis_key(session_id))
    full_redis()

    with caplog.at_level(logging.INFO):
        response = client.post(
            "/accounts/password_change/",
            {
                "old_password": password,
                "new_password1": "a whole new passphrase 42",
                "new_password2": "a whole new passphrase 42",
            },
            secure=True,
        )

    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert "Traceback" not in response.text
    assert len(errors_logged(caplog)) == 1
    # The session was neither moved nor changed.
    assert redis.get(redis_key(session_id)) == stored
    # Nor the password: the old one still works once memory is freed.
    redis.config_set("maxmemory", 0)
    assert submit_login(Client(), user, password).status_code == 302


def test_once_memory_is_freed_logins_work_again_without_a_restart(user, password, redis, full_redis):
    client = Client(raise_request_exception=False)
    full_redis()
    assert_unavailable(submit_login(client, user, password))

    redis.config_set("maxmemory", 0)

    assert submit_login(client, user, password).status_code == 302
    assert client.get("/profile/", secure=True).status_code == 200
