"""
Attacks on the password checks, as an attacker at the site sees them (issue 7).

Each test replays one attack through the real site (Django's test Client over
HTTPS) against the suite's real Redis and database, and asserts what the
attacker gets: status codes, cookies, sessions and counters in Redis.
"""

import logging
import re
import string
import threading
import time
import unicodedata

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import aauthenticate
from django.contrib.auth.signals import user_login_failed
from django.db import connections
from django.utils.crypto import get_random_string

from accounts.models import User
from accounts.services import AUTHENTICATED_AT_KEY
from accounts.tests.factories import UserFactory
from accounts.throttling import LoginThrottled
from sessiondemo.testing.hashers import Gate, GatedMD5PasswordHasher
from sessiondemo.testing.web import (
    browser,
    is_logged_in,
    log_in,
    session_exists,
    session_keys,
    write_session_value,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
LOGINS = {"site": "/accounts/login/", "admin": "/admin/login/?next=/admin/"}
END_OTHERS = "/accounts/sessions/others/end/"


def attempt(client, username, password, *, url=LOGINS["site"], **extra):
    return client.post(url, {"username": username, "password": password}, secure=True, **extra)


def no_session_issued(response):
    # A browser that logged out still sends the emptied cookie, which the answer deletes again.
    return COOKIE not in response.cookies or response.cookies[COOKIE].value == ""


def assert_throttled(response):
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert int(response["Retry-After"]) > 0
    assert no_session_issued(response)


def assert_refused(response):
    """A wrong password: the form again, no session."""
    assert response.status_code == 200
    assert no_session_issued(response)


def limit():
    return settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT


def fail(username, times, *, url=LOGINS["site"]):
    """Post ``times`` wrong passwords for ``username``, each from a browser and address of its own."""
    for _ in range(times):
        assert_refused(attempt(browser(), username, "wrong", url=url))


def fullwidth(text):
    """Return ``text`` with its ASCII letters and digits in their fullwidth forms (NFKC undoes it)."""
    return "".join(chr(ord(c) - 0x21 + 0xFF01) if c.isascii() and c.isalnum() else c for c in text)


def age_authentication(redis, session_id, seconds):
    """Make the session's last password check ``seconds`` old."""
    write_session_value(redis, session_id, AUTHENTICATED_AT_KEY, int(time.time()) - seconds)


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


def test_1_djangos_async_authenticate_spends_the_same_budget(user, password, redis):
    # ModelBackend's own aauthenticate() checks the password itself.
    fail(user.username, limit())

    with pytest.raises(LoginThrottled):
        async_to_sync(aauthenticate)(username=user.username, password=password)


# -- 2. Every password check spends the same budgets --------------------------------------


def stolen(session_id, **kwargs):
    """Return a browser of the attacker's that carries ``session_id`` and nothing else."""
    thief = browser(**kwargs)
    thief.cookies[COOKIE] = session_id
    return thief


def change_password_at(client, url, old_password):
    new = "a whole new passphrase 42"
    return client.post(url, {"old_password": old_password, "new_password1": new, "new_password2": new}, secure=True)


PASSWORD_CHANGES = {"site": "/accounts/password_change/", "admin": "/admin/password_change/"}


@pytest.mark.parametrize("where", PASSWORD_CHANGES)
def test_2_a_stolen_session_cannot_guess_the_old_password(staff, password, redis, where):
    url = PASSWORD_CHANGES[where]
    thief = stolen(log_in(browser(), staff, password))

    statuses = [change_password_at(thief, url, f"guess {n}").status_code for n in range(limit() + 3)]

    assert statuses == [200] * limit() + [429] * 3
    assert_throttled(change_password_at(thief, url, password))
    staff.refresh_from_db()
    assert staff.check_password(password)


def test_2_a_stolen_session_cannot_guess_the_password_to_end_the_owners_sessions(user, password, redis):
    owner_laptop, owner_phone = browser(), browser()
    laptop_id, phone_id = log_in(owner_laptop, user, password), log_in(owner_phone, user, password)
    age_authentication(redis, laptop_id, settings.ACCOUNTS_REAUTHENTICATE_AFTER + 1)
    thief = stolen(laptop_id)

    statuses = [thief.post(END_OTHERS, {"password": f"guess {n}"}, secure=True).status_code for n in range(limit() + 3)]

    assert statuses == [403] * limit() + [429] * 3
    assert_throttled(thief.post(END_OTHERS, {"password": password}, secure=True))
    assert session_exists(redis, phone_id)
    assert is_logged_in(owner_phone)


def test_2_every_password_check_spends_the_one_account_budget(staff, password, redis):
    thief = stolen(log_in(browser(), staff, password))
    age_authentication(redis, thief.cookies[COOKIE].value, settings.ACCOUNTS_REAUTHENTICATE_AFTER + 1)
    checks = [
        lambda n: attempt(browser(), staff.username, f"guess {n}"),
        lambda n: attempt(browser(), staff.username, f"guess {n}", url=LOGINS["admin"]),
        lambda n: change_password_at(thief, PASSWORD_CHANGES["site"], f"guess {n}"),
        lambda n: change_password_at(thief, PASSWORD_CHANGES["admin"], f"guess {n}"),
        lambda n: thief.post(END_OTHERS, {"password": f"guess {n}"}, secure=True),
    ]
    for n in range(limit()):
        assert checks[n % len(checks)](n).status_code in (200, 403)

    for check in checks:
        assert_throttled(check(password))
    staff.refresh_from_db()
    assert staff.check_password(password)


def test_2_old_password_guesses_spend_the_clients_ip_budget(password, redis, settings):
    settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT = 100
    settings.ACCOUNTS_LOGIN_FAILURES_PER_IP = 5
    victim, bystander = UserFactory(password=password), UserFactory(password=password)
    thief = stolen(log_in(browser(), victim, password), ip="203.0.113.77")

    for n in range(5):
        assert change_password_at(thief, PASSWORD_CHANGES["site"], f"guess {n}").status_code == 200

    assert_throttled(attempt(browser(ip="203.0.113.77"), bystander.username, password))
    assert attempt(browser(ip="203.0.113.78"), bystander.username, password).status_code == 302


def test_2_a_wrong_old_password_is_a_failed_login_to_the_signal_and_the_security_log(user, password, caplog):
    failures = []

    def record(sender, credentials, request=None, **kwargs):
        failures.append((credentials, request))

    user_login_failed.connect(record)
    try:
        thief = stolen(log_in(browser(), user, password))
        with caplog.at_level(logging.WARNING, logger="django.security"):
            for n in range(limit() + 2):
                change_password_at(thief, PASSWORD_CHANGES["site"], f"guess {n}")
    finally:
        user_login_failed.disconnect(record)

    assert len(failures) == limit()
    for credentials, request in failures:
        assert credentials["username"] == user.username
        assert credentials["password"] != "guess 0" and "guess" not in credentials["password"]
        assert request is not None and request.path == PASSWORD_CHANGES["site"]
    locks = [r for r in caplog.records if r.name.startswith("django.security") and "locked" in r.getMessage()]
    assert len(locks) == 1
    assert user.username not in locks[0].getMessage() and "guess" not in locks[0].getMessage()


# -- 3. Reserve, then verify ------------------------------------------------------------------


@pytest.fixture
def gate(settings):
    """Hold every password verification at a gate, so that parallel requests overlap for sure."""
    settings.PASSWORD_HASHERS = ["sessiondemo.testing.hashers.GatedMD5PasswordHasher"]
    GatedMD5PasswordHasher.gate = Gate()
    yield GatedMD5PasswordHasher.gate
    GatedMD5PasswordHasher.gate = None


def in_parallel(gate, posts):
    """Send ``posts`` (callables returning a response) from threads at once; return the status codes."""
    start = threading.Barrier(len(posts))
    statuses = [None] * len(posts)

    def run(i):
        try:
            start.wait(gate.timeout)
            statuses[i] = posts[i]().status_code
        finally:
            gate.finish()
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    try:
        gate.open_when_settled(len(posts))
    finally:
        for thread in threads:
            thread.join(gate.timeout)
    return statuses


@pytest.mark.django_db(transaction=True)
def test_3_parallel_guesses_for_one_account_are_verified_no_more_than_the_limit(user, password, redis, gate):
    clients = [browser() for _ in range(12)]
    guesses = [f"guess {n}" for n in range(11)] + [password]
    posts = [lambda c=c, g=g: attempt(c, user.username, g) for c, g in zip(clients, guesses)]

    statuses = in_parallel(gate, posts)

    assert gate.verified <= limit(), f"{gate.verified} verified: {statuses}"
    assert statuses.count(429) == len(posts) - gate.verified, statuses
    assert set(statuses) <= {200, 302, 429}, statuses
    if 302 not in statuses:
        assert session_keys(redis) == []


@pytest.mark.django_db(transaction=True)
def test_3_parallel_guesses_from_one_address_are_verified_no_more_than_its_limit(password, redis, gate, settings):
    settings.ACCOUNTS_LOGIN_FAILURES_PER_IP = 5
    accounts = [UserFactory(password=password) for _ in range(12)]
    posts = [lambda u=u: attempt(browser(ip="203.0.113.50"), u.username, "wrong") for u in accounts]

    statuses = in_parallel(gate, posts)

    assert gate.verified <= 5, f"{gate.verified} verified: {statuses}"
    assert statuses.count(429) == len(posts) - gate.verified, statuses


def test_3_a_check_refused_by_the_address_budget_leaves_the_accounts_budget_alone(user, password, redis, settings):
    settings.ACCOUNTS_LOGIN_FAILURES_PER_IP = 10
    attacker = "198.51.100.9"
    for n in range(10):
        assert_refused(attempt(browser(ip=attacker), f"guess{n}", "wrong"))
    for _ in range(3 * limit()):
        assert_throttled(attempt(browser(ip=attacker), user.username, "wrong"))

    # The account's own budget is untouched: limit - 1 wrong guesses, then its owner gets in.
    fail(user.username, limit() - 1)
    assert attempt(browser(), user.username, password).status_code == 302


def test_3_a_check_refused_by_the_accounts_budget_leaves_the_address_budget_alone(user, password, redis, settings):
    settings.ACCOUNTS_LOGIN_FAILURES_PER_IP = 10
    fail(user.username, limit())
    for _ in range(3 * 10):
        assert_throttled(attempt(browser(ip="198.51.100.9"), user.username, password))

    for n in range(10):
        assert_refused(attempt(browser(ip="198.51.100.9"), f"guess{n}", "wrong"))
    assert_throttled(attempt(browser(ip="198.51.100.9"), f"guess{n + 1}", "wrong"))


def test_3_every_counter_expires(user, password, redis):
    fail(user.username, limit())
    assert_throttled(attempt(browser(), user.username, password))
    attempt(browser(), "nobody-by-that-name", "wrong")
    log_in(browser(), UserFactory(password=password), password)

    counters = list(redis.scan_iter("sd:t:*"))
    assert counters
    for key in counters:
        assert 0 < redis.ttl(key) <= max(settings.ACCOUNTS_LOGIN_COOL_OFF, settings.ACCOUNTS_LOGIN_FAILURE_WINDOW)


@pytest.mark.django_db(transaction=True)
def test_3_a_window_that_ends_during_a_login_leaves_no_counter_without_expiry(user, password, redis, gate):
    statuses = []

    def post():
        try:
            statuses.append(attempt(browser(), user.username, password).status_code)
        finally:
            gate.finish()
            connections.close_all()

    thread = threading.Thread(target=post)
    thread.start()
    # The right password is held at the hasher while the counters' window ends.
    gate.wait_until_held(1)
    reserved = list(redis.scan_iter("sd:t:login:*"))
    assert len(reserved) == 2
    redis.delete(*reserved)
    gate.open_when_settled(1)
    thread.join(gate.timeout)

    assert statuses == [302]
    # Giving the attempt back may count below zero, but in keys that expire with a window.
    for key in redis.scan_iter("sd:t:login:*"):
        assert 0 < redis.ttl(key) <= settings.ACCOUNTS_LOGIN_FAILURE_WINDOW


def test_3_a_successful_login_gives_its_attempt_back(user, password, redis):
    fail(user.username, limit() - 1)

    for _ in range(3):
        log_in(browser(), user, password)

    # The one failure left in the account's budget is still there.
    assert attempt(browser(), user.username, "wrong").status_code == 200
    assert_throttled(attempt(browser(), user.username, password))


# -- 4. Clients grouped by network ---------------------------------------------------------------


def guess_session_id(ip, **extra):
    """Ask for a page with a well-formed session id that was never issued, from ``ip``."""
    guesser = browser(ip=ip)
    guesser.cookies[COOKIE] = get_random_string(32, string.ascii_lowercase + string.digits)
    return guesser.get("/profile/", secure=True, **extra)


@pytest.fixture
def ip_limit(settings):
    settings.ACCOUNTS_LOGIN_FAILURES_PER_IP = 10
    return 10


def test_4_an_ipv6_client_rotating_through_its_64_spends_one_budget(user, password, redis, ip_limit):
    for n in range(ip_limit):
        assert_refused(attempt(browser(ip=f"2001:db8:1:2::{n + 1:x}"), f"guess{n}", "wrong"))

    assert_throttled(attempt(browser(ip="2001:db8:1:2:ffff:ffff:ffff:fffe"), user.username, password))
    assert_throttled(attempt(browser(ip="2001:DB8:1:2:0:0:0:abcd"), user.username, password))
    assert session_keys(redis) == []
    # The neighbouring /64 is someone else.
    assert attempt(browser(ip="2001:db8:1:3::1"), user.username, password).status_code == 302


def test_4_the_ipv6_prefix_length_is_a_setting(user, password, redis, ip_limit, settings):
    settings.CLIENT_IPV6_PREFIX_LENGTH = 48
    for n in range(ip_limit):
        assert_refused(attempt(browser(ip=f"2001:db8:1:{n + 1:x}::1"), f"guess{n}", "wrong"))

    assert_throttled(attempt(browser(ip="2001:db8:1:ffff::1"), user.username, password))
    assert attempt(browser(ip="2001:db8:2::1"), user.username, password).status_code == 302


def test_4_an_ipv4_mapped_address_is_its_ipv4_address(user, password, redis, ip_limit):
    for n in range(ip_limit):
        ip = "::ffff:198.51.100.9" if n % 2 else "198.51.100.9"
        assert_refused(attempt(browser(ip=ip), f"guess{n}", "wrong"))

    assert_throttled(attempt(browser(ip="198.51.100.9"), user.username, password))
    assert_throttled(attempt(browser(ip="::ffff:c633:6409"), user.username, password))
    assert attempt(browser(ip="198.51.100.10"), user.username, password).status_code == 302


def test_4_unknown_session_ids_from_a_rotating_64_are_refused(redis, settings):
    settings.SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 5
    statuses = [guess_session_id(f"2001:db8:9:9:{n:x}::1").status_code for n in range(1, 9)]

    assert statuses == [302] * 4 + [429] * 4
    assert guess_session_id("2001:db8:9:a::1").status_code == 302


HOSTILE_ADDRESSES = [
    "not-an-ip",
    "1.2.3.4.5",
    "256.1.1.1",
    "2001:db8::g",
    "::ffff:999.1.1.1",
    "<script>alert(1)</script>",
    "*",
    "sd:s:" + "a" * 32,
    "x" * 4000,
    "unknown",
    "1.2.3.4:5678",
]


@pytest.mark.parametrize("forwarded", HOSTILE_ADDRESSES)
def test_4_a_hostile_forwarded_address_never_reaches_a_redis_key_nor_a_500(user, password, redis, settings, forwarded):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = browser(ip="10.0.0.1", raise_request_exception=False)

    login = proxy.post(
        "/accounts/login/",
        {"username": user.username, "password": "wrong"},
        secure=True,
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    guess = guess_session_id("10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert login.status_code == 200
    assert guess.status_code == 302
    per_client = [
        key.decode(errors="replace").removeprefix(counter)
        for key in redis.scan_iter()
        for counter in ("sd:t:login:ip:", "sd:t:unknown-ids:")
        if key.startswith(counter.encode())
    ]
    assert len(per_client) == 2
    assert not [client for client in per_client if forwarded.casefold() in client.casefold()]


def test_4_hostile_forwarded_addresses_share_one_budget(user, password, redis, settings, ip_limit):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(ip_limit):
        response = attempt(browser(ip="10.0.0.1"), f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"garbage-{n}")
        assert_refused(response)

    response = attempt(browser(ip="10.0.0.1"), user.username, password, HTTP_X_FORWARDED_FOR="garbage-new")
    assert_throttled(response)
    # A client with a real address behind the same proxy is not locked out.
    response = attempt(browser(ip="10.0.0.1"), user.username, password, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert response.status_code == 302


def test_4_your_sessions_shows_the_full_ipv6_address(user, password):
    client = browser(ip="2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    log_in(client, user, password)

    page = client.get("/accounts/sessions/", secure=True).text

    assert "2001:db8:1:2:aaaa:bbbb:cccc:dddd" in page


# -- 20. A browser that logged in before keeps a budget of its own --------------------------------

DEVICE_COOKIE = "__Host-device"


def device_cookie_of(client):
    return client.cookies[DEVICE_COOKIE].value


def returning(user, password, **kwargs):
    """Return a browser on which ``user`` logged in once and logged out again."""
    client = browser(**kwargs)
    log_in(client, user, password)
    assert client.post("/accounts/logout/", secure=True).status_code == 302
    return client


def test_20_a_guesser_cannot_lock_the_owner_out_of_a_browser_they_logged_in_on(user, password, redis):
    laptop = returning(user, password)

    fail(user.username, limit())
    for n in range(20):
        assert_throttled(attempt(browser(), user.username, f"more {n}"))

    assert attempt(laptop, user.username, password).status_code == 302
    assert is_logged_in(laptop)
    # Anyone else still finds the account locked.
    assert_throttled(attempt(browser(), user.username, password))


def test_20_the_device_cookie_is_a_host_cookie_for_a_long_time(user, password):
    response = log_in_response_with_device(user, password)

    cookie = response.cookies[DEVICE_COOKIE]
    assert cookie["secure"] and cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert not cookie["domain"]
    assert int(cookie["max-age"]) >= 30 * 24 * 3600


def log_in_response_with_device(user, password):
    response = attempt(browser(), user.username, password)
    assert response.status_code == 302
    return response


def test_20_the_device_cookie_reveals_nothing(user, password):
    values = [log_in_response_with_device(user, password).cookies[DEVICE_COOKIE].value for _ in range(2)]

    for value in values:
        assert user.username not in value.casefold()
        assert str(user.pk) not in re.split(r"[^0-9a-zA-Z]+", value)
    # Nor does it name the account in a form that two cookies of one account share.
    parts = [set(re.split(r"[:.]", value)) for value in values]
    shared = parts[0] & parts[1]
    assert all(len(part) <= 8 for part in shared), shared  # a timestamp at most


def tampered(value):
    """Return ``value`` with one character changed in each place, one at a time."""
    for i in range(0, len(value), 7):
        yield value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]


def test_20_a_tampered_device_cookie_is_a_stranger(user, password, redis):
    value = device_cookie_of(returning(user, password))
    fail(user.username, limit())

    for forged in tampered(value):
        client = browser()
        client.cookies[DEVICE_COOKIE] = forged
        assert_throttled(attempt(client, user.username, password))
    assert session_keys(redis) == []


def test_20_a_device_cookie_issued_for_another_account_is_a_stranger(user, password, redis):
    mallory = UserFactory(password=password)
    her_browser = returning(mallory, password)
    fail(user.username, limit())

    assert_throttled(attempt(her_browser, user.username, password))
    # Nor may she carry her cookie elsewhere for it.
    client = browser()
    client.cookies[DEVICE_COOKIE] = device_cookie_of(her_browser)
    assert_throttled(attempt(client, user.username, password))
    assert session_keys(redis) == []


def test_20_a_devices_guesses_spend_its_own_budget_then_the_strangers_one(user, password, redis):
    laptop = returning(user, password)

    statuses = [attempt(laptop, user.username, f"typo {n}").status_code for n in range(2 * limit() + 2)]

    # Its own budget, then the one every stranger shares, then nothing.
    assert statuses == [200] * (2 * limit()) + [429] * 2
    assert_throttled(attempt(browser(), user.username, password))


def test_20_a_devices_typos_leave_the_strangers_budget_alone(user, password, redis):
    laptop = returning(user, password)
    for n in range(limit()):
        assert_refused(attempt(laptop, user.username, f"typo {n}"))

    fail(user.username, limit() - 1)
    assert attempt(browser(), user.username, password).status_code == 302


def test_20_a_login_from_a_known_device_stays_within_two_round_trips(user, password, round_trips):
    laptop = returning(user, password)

    with round_trips() as log:
        response = attempt(laptop, user.username, password)

    assert response.status_code == 302
    assert len(log) == 2, log.trips
