"""Anonymous and hostile cookies: an anonymous visitor, no Redis command, no Redis key."""

import random
import re
import string

import pytest
from django.conf import settings
from django.test import Client
from django.utils.crypto import get_random_string

from sessiondemo.testing.web import session_keys

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME

MALFORMED = [
    "",
    "*",
    "?",
    "[a-z]*",
    "a*a*a*a*a*a*a*a*b",
    "u:1234567",
    "sd:u:1",
    "sd:s:" + "a" * 32,
    "a" * 31,
    "a" * 33,
    "A" * 32,
    "a" * 31 + "\x00",
    "%00" + "a" * 29,
    "é" * 32,
    "a" * 4000,
    "a" * 31 + "\n",
    " " + "a" * 31,
]


def cookie_values(count):
    rng = random.Random(2026)
    values = list(MALFORMED)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " é"
    while len(values) < count // 2:
        values.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64))))
    while len(values) < count:
        # Well-formed, never issued: looked up once, never adopted.
        values.append("".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(32)))
    return values


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_cookie_is_an_anonymous_visitor_at_no_redis_cost(value, round_trips):
    client = Client()
    client.cookies[COOKIE] = value

    with round_trips() as log:
        profile = client.get("/profile/", secure=True)
        home = client.get("/", secure=True)

    assert profile.status_code == 302
    assert profile["Location"].startswith(settings.LOGIN_URL)
    assert home.status_code == 200
    assert len(log) == 0


def test_two_hundred_anonymous_requests_create_no_session(redis, round_trips):
    values = cookie_values(200)
    well_formed = {v for v in values if re.fullmatch(r"[a-z0-9]{32}", v, flags=re.ASCII)}

    with round_trips() as log:
        for number, value in enumerate(values):
            client = Client(REMOTE_ADDR=f"10.0.{number // 250}.{number % 250}")
            client.cookies[COOKIE] = value
            with round_trips() as this_request:
                response = client.get("/profile/", secure=True)
            assert response.status_code == 302
            assert COOKIE not in response.cookies or response.cookies[COOKIE].value == ""
            # A malformed cookie costs nothing; a well-formed one the server
            # never issued (its check characters say so), a count of unknown ids
            # for its client, and no lookup.
            assert this_request.commands == (["EVALSHA"] if value in well_formed else [])

    assert len(well_formed) == 100 and len(log) == 100
    assert session_keys(redis) == []
    assert all(0 < redis.ttl(key) <= 60 for key in redis.scan_iter())


def test_guessing_session_ids_from_one_address_is_logged_and_refused(redis, caplog, settings):
    settings.SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 20
    statuses = []
    for _ in range(30):
        guesser = Client(REMOTE_ADDR="203.0.113.7")
        guesser.cookies[COOKIE] = get_random_string(32, string.ascii_lowercase + string.digits)
        response = guesser.get("/profile/", secure=True)
        statuses.append(response.status_code)

    assert statuses[:19] == [302] * 19
    assert set(statuses[19:]) == {429}
    assert int(response["Retry-After"]) > 0
    # The site's own page (SESSION_REDIS_TOO_MANY_RESPONSE), not the engine's plain default.
    assert "Too many attempts (429)" in response.text
    warnings = [r for r in caplog.records if r.name.startswith("django.security") and "203.0.113.7" in r.getMessage()]
    assert len(warnings) == 1
    bystander = Client(REMOTE_ADDR="198.51.100.1")
    bystander.cookies[COOKIE] = get_random_string(32, string.ascii_lowercase + string.digits)
    assert bystander.get("/profile/", secure=True).status_code == 302


def test_failed_anonymous_logins_leave_only_expiring_counters(client, redis):
    for attempt in range(50):
        response = client.post(
            "/accounts/login/", {"username": f"nobody{attempt}", "password": "wrong"}, secure=True
        )
        assert response.status_code in (200, 429)
        assert COOKIE not in response.cookies

    keys = list(redis.scan_iter())
    assert keys and all(key.startswith(b"sd:t:") for key in keys)
    assert all(0 < redis.ttl(key) <= settings.ACCOUNTS_LOGIN_COOL_OFF for key in keys)
