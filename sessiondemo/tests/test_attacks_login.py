"""
Attacks on the password checks, as an attacker at the site sees them (issue 7).

Each test replays one attack through the real site (Django's test Client over
HTTPS) against the suite's real Redis and database, and asserts what the
attacker gets: status codes, cookies, sessions and counters in Redis.
"""

import unicodedata

import pytest
from django.conf import settings

from accounts.models import User
from accounts.tests.factories import UserFactory
from sessiondemo.testing.web import browser, session_keys

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
LOGINS = {"site": "/accounts/login/", "admin": "/admin/login/?next=/admin/"}


def attempt(client, username, password, *, url=LOGINS["site"], **extra):
    return client.post(url, {"username": username, "password": password}, secure=True, **extra)


def assert_throttled(response):
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert int(response["Retry-After"]) > 0
    assert COOKIE not in response.cookies


def assert_refused(response):
    """A wrong password: the form again, no session."""
    assert response.status_code == 200
    assert COOKIE not in response.cookies


def limit():
    return settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT


def fail(username, times, *, url=LOGINS["site"]):
    """Post ``times`` wrong passwords for ``username``, each from a browser and address of its own."""
    for _ in range(times):
        assert_refused(attempt(browser(), username, "wrong", url=url))


def fullwidth(text):
    """Return ``text`` with its ASCII letters and digits in their fullwidth forms (NFKC undoes it)."""
    return "".join(chr(ord(c) - 0x21 + 0xFF01) if c.isascii() and c.isalnum() else c for c in text)


@pytest.fixture
def staff(password):
    """An account that may log in on the site and in the admin."""
    return UserFactory(password=password, is_staff=True, is_superuser=True)


# Spellings that Django's login forms clean to the same username (strip, NFKC).
SPELLINGS = {
    "trailing space": lambda name: f"{name} ",
    "leading space": lambda name: f" {name}",
    "fullwidth": fullwidth,
    "ideographic space": lambda name: f"{name}\u3000",
}


# -- 1. One identity for the check and the count --------------------------------------


@pytest.mark.parametrize("where", LOGINS)
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_1_a_locked_account_stays_locked_under_every_spelling(staff, password, redis, where, spelling):
    url = LOGINS[where]
    fail(staff.username, limit(), url=url)
    variant = SPELLINGS[spelling](staff.username)

    assert_throttled(attempt(browser(), variant, "another guess", url=url))
    assert_throttled(attempt(browser(), variant, password, url=url))
    assert session_keys(redis) == []


@pytest.mark.parametrize("where", LOGINS)
def test_1_guesses_under_one_spelling_are_counted_against_the_account(staff, password, redis, where):
    url = LOGINS[where]
    variant = f"{staff.username} "

    statuses = [attempt(browser(), variant, f"guess {n}", url=url).status_code for n in range(limit() + 5)]

    assert statuses == [200] * limit() + [429] * 5
    assert_throttled(attempt(browser(), variant, password, url=url))
    assert_throttled(attempt(browser(), staff.username, password, url=url))
    assert session_keys(redis) == []


def test_1_guesses_spread_over_spellings_share_one_budget(staff, password, redis):
    spellings = [spell(staff.username) for spell in SPELLINGS.values()]
    for n in range(limit()):
        assert_refused(attempt(browser(), spellings[n % len(spellings)], "wrong"))

    for variant in [staff.username, *spellings]:
        assert_throttled(attempt(browser(), variant, password))
    assert session_keys(redis) == []


def test_1_a_locked_unknown_name_and_a_locked_account_look_the_same_under_every_spelling(user):
    def locked_answers(username):
        fail(username, limit())
        return [attempt(browser(), spell(username), "wrong") for spell in SPELLINGS.values()]

    known, unknown = locked_answers(user.username), locked_answers("nobody-by-that-name")

    for k, u in zip(known, unknown):
        assert k.status_code == u.status_code == 429
        assert k.content == u.content
        assert k["Retry-After"] == u["Retry-After"]


def test_1_a_case_variant_of_a_locked_account_is_locked_like_that_of_an_unknown_name(user, password, redis):
    try:
        User._default_manager.get_by_natural_key(user.username.upper())
    except User.DoesNotExist:
        pytest.skip("usernames are looked up case-sensitively here; the canonical lookup lands elsewhere")
    fail(user.username, limit())
    fail("nobody-by-that-name", limit())

    assert_throttled(attempt(browser(), user.username.upper(), password))
    assert_throttled(attempt(browser(), "NOBODY-BY-THAT-NAME", "wrong"))
    assert session_keys(redis) == []


def test_1_redis_holds_no_username_whatever_the_spelling(user, redis):
    for spell in SPELLINGS.values():
        attempt(browser(), spell(user.username), "wrong")
        attempt(browser(), spell("nobody-by-that-name"), "wrong")

    keys = [unicodedata.normalize("NFKC", key.decode()).casefold() for key in redis.scan_iter()]
    assert keys
    assert not [key for key in keys if user.username in key or "nobody" in key]
