"""
Brute force and enumeration, as an attacker at the login form sees them.

SEC-28 (login throttled per account and per client IP; the IP only from
trusted proxy data; a cool-off; expiring counters), SEC-29 (session anomaly
detection beyond guessed ids, which sessiondemo/tests/test_anonymous.py
covers) and SEC-30 (failures say nothing about which accounts exist).
See docs/security.md.
"""

import logging
import re

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from accounts.tests.factories import UserFactory
from sessiondemo.testing.web import session_keys

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
LOGIN = "/accounts/login/"


def attempt(client, username, password, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, secure=True, **extra)


def assert_throttled(response):
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert int(response["Retry-After"]) > 0
    assert COOKIE not in response.cookies


def login_counters(redis):
    return list(redis.scan_iter("sd:t:login:*"))


@pytest.fixture
def small_limits(settings):
    """Lower limits than production's, for speed; the logic is the same."""
    settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.ACCOUNTS_LOGIN_FAILURES_PER_IP = 10
    return settings


# -- SEC-28: login throttling ------------------------------------------------------


def test_sec28_the_limits_are_the_documented_ones():
    # AuthCS / A4-2.2.1: lock after 5-10 failures in 15 min for 15 min; a
    # per-IP limit on top, across accounts.
    assert 5 <= settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT <= 10
    assert settings.ACCOUNTS_LOGIN_FAILURE_WINDOW == 15 * 60
    assert settings.ACCOUNTS_LOGIN_COOL_OFF >= 15 * 60
    assert settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT < settings.ACCOUNTS_LOGIN_FAILURES_PER_IP <= 100


def test_sec28_an_account_is_locked_after_repeated_failures_from_rotating_addresses(user, password, redis):
    bob = UserFactory(password=password)
    for number in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT):
        response = attempt(Client(REMOTE_ADDR=f"10.1.0.{number}"), user.username, "wrong")
        assert response.status_code == 200

    # The right password from yet another address does not get through.
    locked = attempt(Client(REMOTE_ADDR="10.1.1.1"), user.username, password)

    assert_throttled(locked)
    assert session_keys(redis) == []
    # Nor does another spelling of the same account name (more in test_attacks_login.py).
    assert_throttled(attempt(Client(REMOTE_ADDR="10.1.1.2"), f" {user.username}\u3000", password))
    # Another account from the same addresses is unaffected.
    assert attempt(Client(REMOTE_ADDR="10.1.0.0"), bob.username, password).status_code == 302


def test_sec28_one_address_trying_many_accounts_is_locked_out(user, password, redis, small_limits):
    attacker = Client(REMOTE_ADDR="198.51.100.9")
    for number in range(small_limits.ACCOUNTS_LOGIN_FAILURES_PER_IP):
        assert attempt(attacker, f"guess{number}", "wrong").status_code == 200

    assert_throttled(attempt(attacker, user.username, password))
    assert session_keys(redis) == []
    assert attempt(Client(REMOTE_ADDR="198.51.100.10"), user.username, password).status_code == 302


def test_sec28_a_forged_x_forwarded_for_from_an_untrusted_peer_is_ignored(user, password, redis, small_limits):
    assert settings.TRUSTED_PROXY_COUNT == 0
    attacker = Client(REMOTE_ADDR="198.51.100.9")
    for number in range(small_limits.ACCOUNTS_LOGIN_FAILURES_PER_IP):
        response = attempt(attacker, f"guess{number}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")
        assert response.status_code == 200

    assert_throttled(attempt(attacker, user.username, password, HTTP_X_FORWARDED_FOR="192.0.2.200"))
    assert all(b"192.0.2." not in key for key in login_counters(redis))


def test_sec28_behind_a_trusted_proxy_the_address_it_saw_is_counted_not_what_the_client_prepends(
    user, password, redis, small_limits
):
    small_limits.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    for number in range(small_limits.ACCOUNTS_LOGIN_FAILURES_PER_IP):
        # The client forges the left part; the proxy appends the real peer.
        forged = f"192.0.2.{number}, 203.0.113.5"
        response = attempt(Client(REMOTE_ADDR=proxy), f"guess{number}", "wrong", HTTP_X_FORWARDED_FOR=forged)
        assert response.status_code == 200

    assert_throttled(
        attempt(Client(REMOTE_ADDR=proxy), user.username, password, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.5")
    )
    # Another client behind the same proxy is not locked out.
    assert attempt(Client(REMOTE_ADDR=proxy), user.username, password, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 302


def test_sec28_the_lock_lifts_after_the_cool_off_and_counters_expire(user, password, redis):
    client = Client()
    for _ in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT):
        attempt(client, user.username, "wrong")
    assert_throttled(attempt(client, user.username, password))
    counters = login_counters(redis)
    assert counters
    for key in counters:
        assert 0 < redis.ttl(key) <= settings.ACCOUNTS_LOGIN_COOL_OFF

    # The cool-off passes: the counters expire.
    for key in counters:
        redis.pexpireat(key, 1)

    assert attempt(client, user.username, password).status_code == 302


def test_sec28_a_successful_login_costs_no_attempt_and_forgives_no_failure(user, password, redis):
    for _ in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT - 1):
        assert attempt(Client(), user.username, "wrong").status_code == 200

    # The owner gets in, as often as they like: a right password gives its attempt back.
    for _ in range(3):
        assert attempt(Client(), user.username, password).status_code == 302
    # But the failures are not forgotten (else each login of the owner's would
    # hand a guesser a fresh budget): one more locks the account.
    assert attempt(Client(), user.username, "wrong").status_code == 200
    assert_throttled(attempt(Client(), user.username, password))


def test_sec28_the_admin_login_is_throttled_too(password, redis):
    User.objects.create_superuser("root", "root@example.com", password)
    client = Client()
    for _ in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT):
        client.post("/admin/login/?next=/admin/", {"username": "root", "password": "wrong"}, secure=True)

    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": password}, secure=True)

    assert_throttled(response)
    assert session_keys(redis) == []


def test_sec28_a_lockout_is_logged_once_under_django_security(user, caplog):
    with caplog.at_level(logging.WARNING, logger="django.security"):
        for number in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT + 3):
            attempt(Client(REMOTE_ADDR=f"10.2.0.{number}"), user.username, "wrong")

    records = [r for r in caplog.records if r.name.startswith("django.security") and "locked" in r.getMessage()]
    assert len(records) == 1
    # The record names no password and no account name (the counter key is a keyed hash).
    assert "wrong" not in records[0].getMessage() and user.username not in records[0].getMessage()


# -- SEC-29: session anomalies -------------------------------------------------------


def test_sec29_a_cookie_replayed_with_another_user_agent_is_logged_as_an_anomaly(user, password, caplog):
    victim = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    session_id = attempt(victim, user.username, password).cookies[COOKIE].value
    thief = Client(HTTP_USER_AGENT="curl/8.5.0", REMOTE_ADDR="203.0.113.66")
    thief.cookies[COOKIE] = session_id

    with caplog.at_level(logging.INFO, logger="django.security"):
        victim.get("/profile/", secure=True)
        assert not [r for r in caplog.records if r.name.startswith("django.security")]
        thief.get("/profile/", secure=True)

    [record] = [r for r in caplog.records if r.name.startswith("django.security")]
    assert "User-Agent" in record.getMessage() and "203.0.113.66" in record.getMessage()
    # Detection only, and the log names the session by its handle, never its id.
    assert session_id not in record.getMessage()


# -- SEC-30: no user enumeration ---------------------------------------------------------


def normalized(response, username):
    """The page with what legitimately differs (the username echoed back, the CSRF token) blanked."""
    text = response.content.decode().replace(username, "<username>")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken" value=""', text)


def test_sec30_an_unknown_account_and_a_wrong_password_get_the_same_answer(user):
    known = attempt(Client(), user.username, "wrong password")
    unknown = attempt(Client(), "nobody-by-that-name", "wrong password")

    assert known.status_code == unknown.status_code == 200
    assert normalized(known, user.username) == normalized(unknown, "nobody-by-that-name")
    assert "Please enter a correct username and password" in known.text
    assert COOKIE not in known.cookies and COOKIE not in unknown.cookies


def test_sec30_a_locked_unknown_account_and_a_locked_real_one_look_the_same(user):
    def lock(username):
        client = Client()
        for _ in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT):
            attempt(client, username, "wrong")
        return attempt(client, username, "wrong")

    known, unknown = lock(user.username), lock("nobody-by-that-name")

    assert known.status_code == unknown.status_code == 429
    assert known.content == unknown.content
    assert known["Retry-After"] == unknown["Retry-After"]


def test_sec30_password_reset_answers_the_same_for_known_and_unknown_addresses(user):
    known = Client().post("/accounts/password_reset/", {"email": user.email}, secure=True)
    unknown = Client().post("/accounts/password_reset/", {"email": "nobody@example.com"}, secure=True)

    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
