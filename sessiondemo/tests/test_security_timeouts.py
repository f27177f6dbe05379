"""
Server-side timeouts, as a returning browser sees them and as Redis holds them.

SEC-17 (idle timeout, sliding), SEC-18 (absolute lifetime), SEC-19 (id renewal
with a short grace for the old id) and SEC-20 (every key the site writes
expires). Time is moved by rewriting the session's own timestamps and TTLs in
Redis, never by sleeping. See docs/security.md.
"""

import pytest
from django.conf import settings
from django.test import Client

from sessiondemo.sessions import index
from sessiondemo.sessions.conf import key_prefix
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.web import (
    index_entries,
    NEW_PASSWORD,
    change_password,
    end_grace_in,
    log_in,
    make_renewal_due,
    redis_key,
    redis_ms,
    set_times,
    stored,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
# Slack for the time a request takes between a TTL being set and read.
SLACK_MS = 5_000


def replay(session_id):
    """A fresh browser that presents ``session_id``, as an attacker with a copied cookie would."""
    client = Client()
    client.cookies[COOKIE] = session_id
    return client


def assert_sent_to_login(response):
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)


# -- SEC-17: the idle timeout ---------------------------------------------------


def test_sec17_a_login_lives_for_the_idle_timeout_in_redis(user, password, redis):
    session_id = log_in(Client(), user, password)

    ttl = redis.pttl(redis_key(session_id))

    idle_ms = settings.SESSION_COOKIE_AGE * 1000
    assert idle_ms - SLACK_MS < ttl <= idle_ms
    # The documented idle timeout: at most 30 minutes (ASVS 4.0.3 L2, SMCS).
    assert settings.SESSION_COOKIE_AGE <= 30 * 60


def test_sec17_each_request_slides_the_idle_timeout_back(user, password, redis):
    client = Client()
    session_id = log_in(client, user, password)
    key = redis_key(session_id)
    # As if the browser had been idle for all but 5 s of the timeout.
    redis.pexpire(key, 5_000)

    response = client.get("/profile/", secure=True)

    assert response.status_code == 200
    assert redis.pttl(key) > settings.SESSION_COOKIE_AGE * 1000 - SLACK_MS


def test_sec17_the_idle_timeout_is_the_setting(user, password, redis, settings):
    settings.SESSION_COOKIE_AGE = 120
    client = Client()
    session_id = log_in(client, user, password)
    key = redis_key(session_id)
    assert 120_000 - SLACK_MS < redis.pttl(key) <= 120_000
    redis.pexpire(key, 1_000)

    client.get("/profile/", secure=True)

    assert 120_000 - SLACK_MS < redis.pttl(key) <= 120_000


def test_sec17_a_session_left_idle_past_the_timeout_is_over(user, password, redis):
    client = Client()
    session_id = log_in(client, user, password)
    # The TTL runs out: an expiry in the past removes the key at once.
    redis.pexpireat(redis_key(session_id), 1)

    assert_sent_to_login(client.get("/profile/", secure=True))
    assert_sent_to_login(replay(session_id).get("/profile/", secure=True))
    assert redis.exists(redis_key(session_id)) == 0


# -- SEC-18: the absolute lifetime ----------------------------------------------


def test_sec18_a_session_past_its_absolute_age_ends_at_the_next_request(user, password, redis):
    client = Client()
    session_id = log_in(client, user, password)
    key = redis_key(session_id)
    absolute = settings.SESSION_REDIS_ABSOLUTE_AGE
    # Logged in ABS + 1 s ago, and active all along (the idle TTL is fresh).
    set_times(redis, session_id, created=redis_ms(redis) - (absolute + 1) * 1000)
    assert redis.pttl(key) > 0

    response = client.get("/profile/", secure=True)

    assert_sent_to_login(response)
    assert redis.exists(key) == 0
    assert session_name(session_id) not in index_entries(redis, user.pk)
    assert response.cookies[COOKIE].value == ""
    assert_sent_to_login(replay(session_id).get("/profile/", secure=True))


def test_sec18_activity_never_carries_a_session_past_its_absolute_age(user, password, redis):
    client = Client()
    session_id = log_in(client, user, password)
    key = redis_key(session_id)
    absolute = settings.SESSION_REDIS_ABSOLUTE_AGE
    # 100 s of its absolute lifetime left: a request must not slide it further.
    set_times(redis, session_id, created=redis_ms(redis) - (absolute - 100) * 1000)

    assert client.get("/profile/", secure=True).status_code == 200
    assert 0 < redis.pttl(key) <= 100_000
    # A request that writes the session does not extend it either.
    assert client.post("/profile/edit/", {"display_name": "Still me", "bio": ""}, secure=True).status_code == 302
    assert 0 < redis.pttl(key) <= 100_000


def test_sec18_the_absolute_age_is_documented_and_bounded():
    # 12 h (ASVS 4.0.3 L2), and never shorter than the idle timeout.
    assert settings.SESSION_COOKIE_AGE <= settings.SESSION_REDIS_ABSOLUTE_AGE <= 12 * 60 * 60


# -- SEC-19: id renewal with a grace period -------------------------------------

RENEW_AFTER = 600


def renew(client, user, password, redis, settings):
    old = log_in(client, user, password)
    make_renewal_due(redis, settings, old, after=RENEW_AFTER)
    response = client.get("/profile/", secure=True)
    assert response.status_code == 200
    return old, response.cookies[COOKIE].value


def test_sec19_no_renewal_before_it_is_due(user, password, redis, settings):
    settings.SESSION_REDIS_RENEW_AFTER = RENEW_AFTER
    client = Client()
    session_id = log_in(client, user, password)

    response = client.get("/profile/", secure=True)

    assert response.status_code == 200
    assert COOKIE not in response.cookies
    assert stored(redis, session_id) is not None


def test_sec19_a_due_session_gets_a_new_id_and_the_old_one_only_a_grace_period(user, password, redis, settings):
    client = Client()
    old, new = renew(client, user, password, redis, settings)

    assert new and new != old
    assert client.get("/profile/", secure=True).status_code == 200
    grace_ms = settings.SESSION_REDIS_RENEWAL_GRACE * 1000
    # The old id is retired: it lives for the grace period at most, and no
    # longer slides with use.
    assert 0 < redis.pttl(redis_key(old)) <= grace_ms
    assert redis.pttl(redis_key(new)) > grace_ms
    # A request already in flight with the old id still works within the grace.
    assert replay(old).get("/profile/", secure=True).status_code == 200
    # The new session keeps the login's creation time: renewal is no way
    # around the absolute age.
    assert stored(redis, new).created_ms < redis_ms(redis) - RENEW_AFTER * 1000
    assert session_name(new) in index_entries(redis, user.pk)
    # The old id stays filed for its grace period, so that ending the user's sessions ends it too.
    assert session_name(old) in index_entries(redis, user.pk)


def test_sec19_after_the_grace_period_the_old_id_is_worthless(user, password, redis, settings):
    client = Client()
    old, new = renew(client, user, password, redis, settings)
    # The grace period runs out.
    redis.pexpireat(redis_key(old), 1)

    assert_sent_to_login(replay(old).get("/profile/", secure=True))
    assert redis.exists(redis_key(old)) == 0
    assert client.get("/profile/", secure=True).status_code == 200


def test_sec19_logging_out_during_the_grace_ends_the_old_id_too(user, password, redis, settings):
    client = Client()
    old, new = renew(client, user, password, redis, settings)

    assert client.post("/accounts/logout/", secure=True).status_code == 302

    assert redis.exists(redis_key(new)) == 0
    assert_sent_to_login(replay(new).get("/profile/", secure=True))
    assert_sent_to_login(replay(old).get("/profile/", secure=True))


def test_sec19_a_password_change_during_the_grace_ends_the_old_id_too(user, password, redis, settings):
    laptop = Client()
    old, new = renew(laptop, user, password, redis, settings)
    phone = Client()
    log_in(phone, user, password)

    response = change_password(phone, password, NEW_PASSWORD)

    assert response.status_code == 302
    assert_sent_to_login(replay(new).get("/profile/", secure=True))
    assert_sent_to_login(replay(old).get("/profile/", secure=True))
    assert redis.exists(redis_key(old)) == 0


def test_sec19_using_the_old_id_within_the_grace_does_not_extend_it(user, password, redis, settings):
    client = Client()
    old, new = renew(client, user, password, redis, settings)
    # Half the grace period has passed.
    end_grace_in(redis, old, 30_000)

    assert replay(old).get("/profile/", secure=True).status_code == 200

    assert 0 < redis.pttl(redis_key(old)) <= 30_000


# -- SEC-20: every key the site writes expires ------------------------------------


def test_sec20_after_a_full_flow_every_key_has_a_bounded_ttl(user, password, redis, settings):
    settings.SESSION_REDIS_RENEW_AFTER = RENEW_AFTER
    anonymous = Client()
    anonymous.get("/", secure=True)
    anonymous.get("/accounts/login/", secure=True)
    anonymous.post("/accounts/login/", {"username": "nobody", "password": "x"}, secure=True)
    anonymous.cookies[COOKIE] = "0" * 32
    anonymous.get("/profile/", secure=True)
    anonymous.post("/accounts/signup/", {"username": "carol", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, secure=True)

    main, laptop, phone = Client(), Client(), Client()
    main.post("/accounts/login/", {"username": user.username, "password": "wrong"}, secure=True)
    main_id = log_in(main, user, password)
    log_in(laptop, user, password)
    log_in(phone, user, password)
    main.post("/profile/edit/", {"display_name": "Alice", "bio": "hi"}, secure=True)
    main.get("/accounts/sessions/", secure=True)
    make_renewal_due(redis, settings, main_id, after=RENEW_AFTER)
    main.get("/profile/", secure=True)  # renewal: the old id is retired
    change_password(main, password, NEW_PASSWORD)
    phone.get("/profile/", secure=True)
    log_in(laptop, user, NEW_PASSWORD)
    laptop.post("/accounts/logout/", secure=True)
    log_in(Client(), type(user).objects.get(username="carol"), NEW_PASSWORD)

    keys = list(redis.scan_iter())
    prefixes = {key[:5] for key in keys}
    assert {b"sd:s:", b"sd:u:", b"sd:t:"} <= prefixes
    assert all(key.startswith(key_prefix().encode()) for key in keys)
    longest = max(
        settings.SESSION_COOKIE_AGE,
        settings.SESSION_REDIS_ABSOLUTE_AGE + index.NEW_ENTRY_MARGIN_MS // 1000,
        settings.ACCOUNTS_LOGIN_COOL_OFF,
        settings.ACCOUNTS_LOGIN_FAILURE_WINDOW,
    )
    for key in keys:
        ttl = redis.ttl(key)
        assert 0 < ttl <= longest, (key, ttl)
        if key.startswith(b"sd:s:"):
            assert ttl <= settings.SESSION_COOKIE_AGE, key
