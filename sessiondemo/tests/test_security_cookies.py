"""
The session and CSRF cookies as a browser and an attacker see them.

SEC-01 (id format and randomness), SEC-03 (hostile cookie values), SEC-06 (the
id never leaves the cookie), SEC-10 to SEC-16 (cookie attributes on every
Set-Cookie, deletion, size, no development weakening), SEC-32 (CSRF on every
state-changing endpoint, Origin checked) and SEC-33 (the CSRF cookie).
See docs/security.md.
"""

import json
import math
import os
import re
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from django.test import Client

from sessiondemo.checks import installed
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.web import (
    NEW_PASSWORD,
    change_password,
    log_in,
    log_in_response,
    make_renewal_due,
    redis_key,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sessiondemo.tests.security_urls")]

COOKIE = settings.SESSION_COOKIE_NAME
CSRF_COOKIE = settings.CSRF_COOKIE_NAME
ID_RE = re.compile(r"[a-z0-9]{32}")
ALPHABET = string.ascii_lowercase + string.digits
BASE_DIR = Path(__file__).resolve().parents[2]


def session_set_cookies(user, password, redis, settings):
    """Return the session cookie morsels of login, rotation, renewal and logout, by name."""
    client = Client()
    login = log_in_response(client, user, password).cookies[COOKIE]
    change = change_password(client, password, NEW_PASSWORD)
    assert change.status_code == 302
    rotation = change.cookies[COOKIE]
    make_renewal_due(redis, settings, rotation.value)
    renewal = client.get("/profile/", secure=True).cookies[COOKIE]
    assert renewal.value not in ("", rotation.value)
    deletion = client.post("/accounts/logout/", secure=True).cookies[COOKIE]
    return {"login": login, "rotation": rotation, "renewal": renewal, "deletion": deletion}


# -- SEC-01: ids come from a CSPRNG, 32 characters of [a-z0-9] -----------------


def chi_square_limit(df, z=4.75):
    """The chi-square value with upper tail p = 1e-6 (z = 4.75), by Wilson-Hilferty."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_sec01_ten_thousand_generated_ids_are_well_formed_unique_and_uniform():
    store = SessionStore()
    ids = [store._get_new_session_key() for _ in range(10_000)]

    assert all(ID_RE.fullmatch(value) for value in ids)
    assert len(set(ids)) == len(ids)
    expected = len(ids) / len(ALPHABET)
    per_position = 0.0
    for position in range(32):
        counts = Counter(value[position] for value in ids)
        per_position += sum((counts[c] - expected) ** 2 / expected for c in ALPHABET)
    overall = Counter("".join(ids))
    expected_overall = len(ids) * 32 / len(ALPHABET)
    chi_overall = sum((overall[c] - expected_overall) ** 2 / expected_overall for c in ALPHABET)
    # p > 1e-6 for the summed per-position statistic and for the overall one: a
    # biased generator fails by far, a good one fails about once in a million runs.
    assert per_position < chi_square_limit(32 * (len(ALPHABET) - 1))
    assert chi_overall < chi_square_limit(len(ALPHABET) - 1)
    # 32 characters of 36 symbols: about 165 bits, above ASVS 5.0's 128.
    assert 32 * math.log2(len(ALPHABET)) >= 128


def test_sec01_two_hundred_logins_get_two_hundred_distinct_well_formed_ids(user, password):
    ids = [log_in(Client(), user, password) for _ in range(200)]

    assert all(ID_RE.fullmatch(value) for value in ids)
    assert len(set(ids)) == 200


# -- SEC-03: hostile cookie values, on the paths that write the session --------

HOSTILE = ["*", "[a-z]*", "a*a*a*a*a*a*a*a*b", "sd:u:1", "A" * 32, "a" * 31 + "\x00", "é" * 32, "a" * 4000]


@pytest.mark.parametrize("value", HOSTILE)
def test_sec03_a_hostile_cookie_on_login_is_dropped_and_a_fresh_id_issued(value, user, password, redis, round_trips):
    client = Client()
    client.cookies[COOKIE] = value

    with round_trips() as log:
        response = log_in_response(client, user, password)

    issued = response.cookies[COOKIE].value
    assert ID_RE.fullmatch(issued)
    assert issued != value
    # No lookup of the hostile value: the login's own write and the
    # throttle's bookkeeping only, never a read of the planted id.
    assert "HGETALL" not in log.commands and "EXISTS" not in log.commands
    assert all(not key.startswith(b"sd:s:") or key == redis_key(issued).encode() for key in redis.scan_iter())


@pytest.mark.parametrize("value", HOSTILE)
def test_sec03_a_hostile_cookie_is_deleted_by_the_response(value):
    client = Client()
    client.cookies[COOKIE] = value

    response = client.get("/profile/", secure=True)

    assert response.status_code == 302
    morsel = response.cookies[COOKIE]
    assert morsel.value == "" and morsel["max-age"] == 0


# -- SEC-06: the session id never appears in a URL, a body or a redirect -------


def test_sec06_no_page_url_redirect_or_body_carries_the_session_id(user, password):
    from sessiondemo.tests.security_urls import site_get_urls

    client = Client()
    response = log_in_response(client, user, password)
    session_id = response.cookies[COOKIE].value
    assert session_id not in response["Location"] and session_id not in response.text

    for name, url in site_get_urls().items():
        response = client.get(url, secure=True, follow=True)
        assert session_id not in url
        for hop, _ in response.redirect_chain:
            assert session_id not in hop, name
        assert session_id not in response.text, name
        assert all(session_id not in value for _, value in response.items()), name
    # And the page that lists sessions shows handles, never the id or its digest.
    page = client.get("/accounts/sessions/", secure=True).text
    assert session_name(session_id) not in page


# -- SEC-09: re-authentication rotates the id too --------------------------------
# (The password change is in accounts/tests/test_views.py.)


def test_sec09_logging_in_again_as_the_same_user_issues_a_new_id(user, password, redis):
    client = Client()
    first = log_in(client, user, password)

    second = log_in(client, user, password)

    assert second != first
    assert redis.exists(redis_key(first)) == 0


def test_sec09_re_authenticating_with_the_password_issues_a_new_id(user, password, redis, settings):
    client = Client()
    before = log_in(client, user, password)
    settings.ACCOUNTS_REAUTHENTICATE_AFTER = -1

    response = client.post("/accounts/sessions/others/end/", {"password": password}, secure=True)

    assert response.status_code == 302
    assert response.cookies[COOKIE].value != before
    assert redis.exists(redis_key(before)) == 0


# -- SEC-10 to SEC-13: attributes on every session Set-Cookie -------------------


def test_sec10_to_12_settings_name_the_cookie_host_only_secure_httponly_lax():
    assert COOKIE.startswith("__Host-")
    assert settings.SESSION_COOKIE_SECURE is True
    assert settings.SESSION_COOKIE_PATH == "/"
    assert settings.SESSION_COOKIE_DOMAIN is None
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


def test_sec10_to_13_every_session_set_cookie_is_host_only_secure_httponly_samesite_and_per_browser_session(
    user, password, redis, settings
):
    morsels = session_set_cookies(user, password, redis, settings)

    for event, morsel in morsels.items():
        assert morsel["secure"] is True, event
        assert morsel["path"] == "/", event
        assert morsel["domain"] == "", event
        assert morsel["samesite"] == settings.SESSION_COOKIE_SAMESITE, event
        assert morsel["httponly"] is True, event
    for event in ("login", "rotation", "renewal"):
        assert ID_RE.fullmatch(morsels[event].value)
        # SEC-13: a browser-session cookie; Redis's TTL is the real expiry.
        assert morsels[event]["max-age"] == "" and morsels[event]["expires"] == "", event
    assert len({morsels[e].value for e in ("login", "rotation", "renewal")}) == 3


def test_sec11_the_deletion_cookie_is_httponly_too(user, password, redis):
    client = Client()
    session_id = log_in(client, user, password)

    deletion = client.post("/accounts/logout/", secure=True).cookies[COOKIE]
    assert deletion["httponly"] is True
    # And when a session ended on the server (here its TTL ran out).
    session_id = log_in(client, user, password)
    redis.pexpireat(redis_key(session_id), 1)
    assert client.get("/profile/", secure=True).cookies[COOKIE]["httponly"] is True


# -- SEC-14: logout and expiry delete the cookie in a form browsers accept ------


def test_sec14_logout_deletes_the_cookie_with_max_age_zero_secure_path_slash_and_no_domain(user, password):
    client = Client()
    log_in_response(client, user, password)

    deletion = client.post("/accounts/logout/", secure=True).cookies[COOKIE]

    assert deletion.value == ""
    assert deletion["max-age"] == 0
    assert deletion["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert deletion["secure"] is True
    assert deletion["path"] == "/"
    assert deletion["domain"] == ""


def test_sec14_a_session_that_ended_on_the_server_gets_its_cookie_deleted(user, password, redis):
    client = Client()
    session_id = log_in(client, user, password)
    # As if its TTL had run out: an expiry in the past deletes the key at once.
    redis.pexpireat(redis_key(session_id), 1)

    response = client.get("/profile/", secure=True)

    assert response.status_code == 302
    deletion = response.cookies[COOKIE]
    assert deletion.value == "" and deletion["max-age"] == 0
    assert deletion["secure"] is True and deletion["path"] == "/" and deletion["domain"] == ""


# -- SEC-15: every cookie the site sets fits in 4096 bytes -----------------------


class RecordingClient(Client):
    """A test client that keeps every cookie the site sets."""

    def __init__(self, morsels, **kwargs):
        super().__init__(**kwargs)
        self.morsels = morsels

    def request(self, **request):
        response = super().request(**request)
        self.morsels.extend(response.cookies.values())
        return response


def test_sec15_every_cookie_set_along_the_whole_flow_fits_in_4096_bytes(redis, settings):
    morsels = []
    client = RecordingClient(morsels)
    username = "cookie-size-" + "x" * 130
    client.get("/accounts/signup/", secure=True)
    client.post(
        "/accounts/signup/",
        {"username": username, "email": "", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        secure=True,
    )
    client.post("/accounts/login/", {"username": username, "password": "wrong"}, secure=True)
    response = client.post("/accounts/login/", {"username": username, "password": NEW_PASSWORD}, secure=True)
    assert response.status_code == 302
    client.post("/profile/edit/", {"display_name": "é" * 80, "bio": "b" * 2000}, secure=True)
    client.get("/profile/", secure=True)
    client.get("/test/remember/" + "v" * 1000 + "/", secure=True)
    client.post("/accounts/sessions/others/end/", secure=True)
    make_renewal_due(redis, settings, client.cookies[COOKIE].value)
    client.get("/accounts/sessions/", secure=True)
    client.post("/accounts/logout/", secure=True)

    names = {m.key for m in morsels}
    assert {COOKIE, CSRF_COOKIE, "messages"} <= names
    for morsel in morsels:
        assert len(morsel.key.encode()) + len(morsel.coded_value.encode()) <= 4096, morsel.key


# -- SEC-16: development does not weaken the cookies -----------------------------


def production_settings(**env):
    """Import sessiondemo.settings.base in a fresh interpreter with ``env``; return its cookie settings."""
    names = [
        "DEBUG", "SESSION_COOKIE_NAME", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE", "SESSION_COOKIE_PATH", "SESSION_COOKIE_DOMAIN",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE", "CSRF_COOKIE_NAME", "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_SAMESITE", "CSRF_COOKIE_PATH", "CSRF_COOKIE_DOMAIN", "CSRF_USE_SESSIONS",
    ]  # fmt: skip
    code = (
        "import json, sessiondemo.settings.base as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SESSION_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


HARDENED = {
    "SESSION_COOKIE_NAME": "__Host-sessionid",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_PATH": "/",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_EXPIRE_AT_BROWSER_CLOSE": True,
    "CSRF_COOKIE_NAME": "__Host-csrftoken",
    "CSRF_COOKIE_SECURE": True,
    "CSRF_COOKIE_SAMESITE": "Lax",
    "CSRF_COOKIE_PATH": "/",
    "CSRF_COOKIE_DOMAIN": None,
    "CSRF_USE_SESSIONS": False,
}


def test_sec16_production_and_development_settings_share_the_hardened_cookies():
    production = production_settings(DJANGO_SECRET_KEY="p" * 20 + "roduction-key-" + "q9" * 20)
    development = production_settings(DJANGO_DEBUG="true")

    assert production["DEBUG"] is False
    assert development["DEBUG"] is True
    for name, value in HARDENED.items():
        assert production[name] == value, name
        # No "insecure dev cookie" switch: development runs the same cookies.
        assert development[name] == value, name


def test_sec16_production_settings_refuse_to_start_without_a_secret_key():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SESSION_"))}
    result = subprocess.run(
        [sys.executable, "-c", "import sessiondemo.settings.base"],
        env=clean,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


# -- SEC-32: CSRF on every state-changing endpoint, with the Origin checked -----

GOOD_ORIGIN = "https://testserver"


def csrf_client(user=None, password=None):
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/", secure=True)
    if user is not None:
        response = client.post(
            "/accounts/login/",
            {"username": user.username, "password": password, "csrfmiddlewaretoken": token(client)},
            secure=True,
            HTTP_ORIGIN=GOOD_ORIGIN,
        )
        assert response.status_code == 302
        client.get("/profile/", secure=True)
    return client


def token(client):
    return client.cookies[CSRF_COOKIE].value


def state_changing_posts(user, password):
    """(path, form data, needs a login) for every endpoint that changes state."""
    return [
        ("/accounts/login/", {"username": user.username, "password": password}, False),
        ("/accounts/signup/", {"username": "newcomer", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, False),
        ("/accounts/password_reset/", {"email": user.email}, False),
        ("/accounts/logout/", {}, True),
        ("/profile/edit/", {"display_name": "Changed", "bio": ""}, True),
        ("/accounts/password_change/", {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, True),
        ("/accounts/sessions/others/end/", {"password": password}, True),
        ("/accounts/sessions/0123456789abcdef/end/", {"password": password}, True),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(8))
def test_sec32_every_state_changing_post_needs_a_token_and_a_same_origin(case, user, password, redis):
    path, data, needs_login = state_changing_posts(user, password)[case]
    client = csrf_client(user, password) if needs_login else csrf_client()
    before = sorted(redis.scan_iter("sd:s:*"))

    no_token = client.post(path, data, secure=True, HTTP_ORIGIN=GOOD_ORIGIN)
    evil_origin = client.post(
        path, {**data, "csrfmiddlewaretoken": token(client)}, secure=True, HTTP_ORIGIN="https://evil.example"
    )
    no_origin_nor_referer = client.post(path, {**data, "csrfmiddlewaretoken": token(client)}, secure=True)

    for refused in (no_token, evil_origin, no_origin_nor_referer):
        assert refused.status_code == 403
        assert "The form could not be verified" in refused.text
    assert sorted(redis.scan_iter("sd:s:*")) == before
    accepted = client.post(path, {**data, "csrfmiddlewaretoken": token(client)}, secure=True, HTTP_ORIGIN=GOOD_ORIGIN)
    assert accepted.status_code != 403


def test_sec32_csrf_middleware_is_on():
    assert installed(CsrfViewMiddleware)


# -- SEC-33: the CSRF cookie is hardened and makes no session ---------------------


def test_sec33_csrf_settings_are_hardened():
    assert CSRF_COOKIE.startswith("__Host-")
    assert settings.CSRF_COOKIE_SECURE is True
    assert settings.CSRF_COOKIE_SAMESITE in ("Lax", "Strict")
    assert settings.CSRF_COOKIE_PATH == "/"
    assert settings.CSRF_COOKIE_DOMAIN is None
    assert settings.CSRF_USE_SESSIONS is False
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        assert re.fullmatch(r"https://[a-z0-9.-]+(:\d+)?", origin), origin


def test_sec33_the_login_form_sets_a_hardened_csrf_cookie_and_no_session(redis, round_trips):
    client = Client()

    with round_trips() as log:
        response = client.get("/accounts/login/", secure=True)

    morsel = response.cookies[CSRF_COOKIE]
    assert morsel.value
    assert morsel["secure"] is True
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""
    assert morsel["samesite"] == "Lax"
    assert COOKIE not in response.cookies
    assert len(log) == 0 and redis.dbsize() == 0


def test_sec33_a_new_user_gets_a_new_csrf_token_at_login(user, password):
    client = csrf_client()
    before = token(client)

    response = client.post(
        "/accounts/login/",
        {"username": user.username, "password": password, "csrfmiddlewaretoken": before},
        secure=True,
        HTTP_ORIGIN=GOOD_ORIGIN,
    )

    assert response.status_code == 302
    assert response.cookies[CSRF_COOKIE].value != before
