"""Anonymous and hostile cookies: an anonymous visitor, no Redis command, no Redis key."""

import random
import re
import string

import pytest
from django.conf import settings
from django.test import Client

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


def test_two_hundred_anonymous_requests_leave_redis_empty(redis, round_trips):
    values = cookie_values(200)
    well_formed = [v for v in values if re.fullmatch(r"[a-z0-9]{32}", v, flags=re.ASCII)]

    with round_trips() as log:
        for value in values:
            client = Client()
            client.cookies[COOKIE] = value
            response = client.get("/profile/", secure=True)
            assert response.status_code == 302
            assert COOKIE not in response.cookies or response.cookies[COOKIE].value == ""
            client.post("/accounts/login/", {"username": "nobody", "password": "wrong"}, secure=True)

    assert redis.dbsize() == 0
    # Only a well-formed id is looked up, once: the answer deletes the cookie.
    assert set(log.commands) == {"EVALSHA"}
    assert len(log) == len(well_formed) == 100
