"""
Property tests (hypothesis) over what a client controls: cookie headers and
form fields; and over what the site stores: session payloads.

SEC-03 (any cookie: no 500, no Redis command for an id outside the format),
SEC-40 (no anonymous request creates a key), SEC-41 (the size cap refuses and
writes nothing) and SEC-42 (JSON values round-trip exactly). See
docs/security.md.
"""

import json
import re
import string

import pytest
from django.conf import settings
from django.http.cookie import parse_cookie
from django.template.defaultfilters import linebreaksbr
from django.utils.html import escape
from django.test import Client, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from profiles.models import Profile
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.exceptions import SessionTooLarge
from sessiondemo.testing.web import redis_key, session_keys

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sessiondemo.tests.security_urls")]

COOKIE = settings.SESSION_COOKIE_NAME
ID_RE = re.compile(r"[a-z0-9]{32}")
# The fixtures (the suite's Redis, a logged-in client) hold no state that one
# example could spoil for the next: each example asserts on what it did.
PROPERTY = hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Anything a WSGI server can hand over in a header: ISO-8859-1 code points.
HEADER_TEXT = st.text(st.characters(max_codepoint=255), max_size=200)
# Anything a browser can put in a form field (no lone surrogates: they cannot be sent).
FORM_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
HOSTILE_BITS = st.sampled_from(
    ["*", "?", "[a-z]*", "\x00", ";", ",", '"', "\\", "sd:u:1", "sd:s:", "%00", "\r\n", "<script>", " ", "é"]
)
WELL_FORMED = st.text(string.ascii_lowercase + string.digits, min_size=32, max_size=32)
COOKIE_VALUES = st.one_of(
    HEADER_TEXT,
    WELL_FORMED,
    st.lists(st.one_of(HOSTILE_BITS, WELL_FORMED, HEADER_TEXT), max_size=4).map("".join),
)
ANONYMOUS_PATHS = ["/", "/profile/", "/accounts/login/", "/accounts/sessions/", "/no/such/page/"]


# -- SEC-03 / SEC-40: any cookie header -------------------------------------------------


@PROPERTY
@given(value=COOKIE_VALUES, path=st.sampled_from(ANONYMOUS_PATHS), raw=st.booleans())
def test_sec03_any_session_cookie_is_an_anonymous_visitor_and_costs_redis_nothing_unless_well_formed(
    value, path, raw, redis, round_trips
):
    header = f"{COOKIE}={value}" if raw else f"other=1; {COOKIE}={json.dumps(value)}; x={value}"
    presented = parse_cookie(header).get(COOKIE)
    well_formed = presented is not None and ID_RE.fullmatch(presented) is not None

    with override_settings(SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE=10**6):
        with round_trips() as log:
            response = Client(raise_request_exception=False).get(path, HTTP_COOKIE=header, secure=True)

    assert response.status_code in (200, 302, 404)
    if path in ("/profile/", "/accounts/sessions/"):
        assert response.status_code == 302
        assert response["Location"].startswith(settings.LOGIN_URL)
    if not well_formed:
        assert len(log) == 0
    else:
        # At most the lookup and the count of unknown ids for this client.
        assert len(log) <= 2
    assert session_keys(redis) == []
    assert COOKIE not in response.cookies or response.cookies[COOKIE].value == ""


@PROPERTY
@given(value=COOKIE_VALUES, username=FORM_TEXT, password=FORM_TEXT)
def test_sec03_any_cookie_on_a_failed_login_post_never_errors_and_stores_no_session(value, username, password, redis):
    header = f"{COOKIE}={value}"

    with override_settings(
        SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE=10**6,
        ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT=10**6,
        ACCOUNTS_LOGIN_FAILURES_PER_IP=10**6,
    ):
        response = Client(raise_request_exception=False).post(
            "/accounts/login/", {"username": username, "password": password}, HTTP_COOKIE=header, secure=True
        )

    assert response.status_code == 200
    assert COOKIE not in response.cookies or response.cookies[COOKIE].value == ""
    assert session_keys(redis) == []


# -- Form fields: never a 500, and what is shown is escaped -------------------------------


@PROPERTY
@given(username=FORM_TEXT, email=FORM_TEXT, password1=FORM_TEXT, password2=FORM_TEXT)
def test_signup_never_errors_whatever_the_fields(username, email, password1, password2, redis):
    with override_settings(ACCOUNTS_SIGNUPS_PER_IP=10**6):
        response = Client(raise_request_exception=False).post(
            "/accounts/signup/",
            {"username": username, "email": email, "password1": password1, "password2": password2},
            secure=True,
        )

    assert response.status_code in (200, 302)
    # Signing up never logs in, so never stores a session.
    assert session_keys(redis) == []
    assert COOKIE not in response.cookies


@PROPERTY
@given(username=FORM_TEXT, password=FORM_TEXT, next_url=FORM_TEXT)
def test_login_never_errors_whatever_the_fields(username, password, next_url, redis):
    with override_settings(ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT=10**6, ACCOUNTS_LOGIN_FAILURES_PER_IP=10**6):
        response = Client(raise_request_exception=False).post(
            "/accounts/login/", {"username": username, "password": password, "next": next_url}, secure=True
        )

    # The form again, with an error (wrong credentials, or a field missing or too long).
    assert response.status_code == 200
    assert "<h1>Log in</h1>" in response.text and 'role="alert"' in response.text
    assert COOKIE not in response.cookies
    assert session_keys(redis) == []


@pytest.fixture
def profile_client(user, password):
    client = Client(raise_request_exception=False)
    response = client.post("/accounts/login/", {"username": user.username, "password": password}, secure=True)
    assert response.status_code == 302
    return client, user


@PROPERTY
@given(display_name=FORM_TEXT, bio=FORM_TEXT)
def test_profile_edit_never_errors_and_shows_what_it_saved_escaped(display_name, bio, profile_client):
    client, user = profile_client

    response = client.post("/profile/edit/", {"display_name": display_name, "bio": bio}, secure=True)

    assert response.status_code in (200, 302)
    if response.status_code == 302:
        profile = Profile.objects.get(user=user)
        page = client.get("/profile/", secure=True)
        assert page.status_code == 200
        if profile.display_name:
            assert f"<dd>{escape(profile.display_name)}</dd>" in page.text
        if profile.bio:
            assert f"<dd>{linebreaksbr(profile.bio, autoescape=True)}</dd>" in page.text


# -- SEC-42: JSON values round-trip exactly through the engine ------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=50),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=10), children, max_size=5),
    max_leaves=20,
)
# Any key an application may use; "_session_expiry" is Django's own and must
# hold an expiry (set_expiry() writes it), so arbitrary values are not for it.
SESSION_KEYS = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20).filter(
    lambda key: key != "_session_expiry"
)
SESSIONS = st.dictionaries(SESSION_KEYS, JSON_VALUES, max_size=6)


def stored_fields(redis, session_key):
    """Return the session's hash, each data value without the tag that binds it to the session."""
    fields = redis.hgetall(redis_key(session_key))
    return {f: v[8:] if f.startswith(b"d:") else v for f, v in fields.items()}


@PROPERTY
@given(first=SESSIONS, second=SESSIONS)
def test_sec42_json_values_round_trip_exactly_through_save_and_load(first, second, redis):
    session = SessionStore()
    session.update(first)
    session.save()

    loaded = SessionStore(session.session_key)
    assert dict(loaded.items()) == first
    # Change it through the diffing save, then read it back again.
    for key in list(loaded.keys()):
        if key not in second:
            del loaded[key]
    loaded.update(second)
    loaded.save()

    again = SessionStore(session.session_key)
    assert dict(again.items()) == second
    for field, raw in stored_fields(redis, session.session_key).items():
        if field.startswith(b"d:"):
            json.loads(raw)  # every stored value is JSON


# -- SEC-41: the size cap -------------------------------------------------------------------

MAX_BYTES = 2048


@PROPERTY
@given(
    start=SESSIONS,
    key=SESSION_KEYS,
    size=st.integers(min_value=0, max_value=2 * MAX_BYTES),
)
def test_sec41_a_save_past_the_cap_raises_and_writes_nothing(start, key, size, redis):
    with override_settings(SESSION_REDIS_MAX_BYTES=MAX_BYTES):
        existing = set(redis.scan_iter("sd:s:*"))
        session = SessionStore()
        session.update(start)
        try:
            session.save()
        except SessionTooLarge:
            # A new session too large from the start is never created.
            assert set(redis.scan_iter("sd:s:*")) == existing
            return
        before = stored_fields(redis, session.session_key)

        session[key] = "x" * size
        try:
            session.save()
        except SessionTooLarge:
            # Nothing changed in Redis.
            assert stored_fields(redis, session.session_key) == before
            assert dict(SessionStore(session.session_key).items()) == start
        else:
            fields = stored_fields(redis, session.session_key)
            data = sum(len(f) - 2 + len(v) for f, v in fields.items() if f.startswith(b"d:"))
            assert data <= MAX_BYTES
            assert SessionStore(session.session_key)[key] == "x" * size


def test_sec41_the_cap_counts_non_ascii_key_names_in_bytes(redis, settings):
    settings.SESSION_REDIS_MAX_BYTES = MAX_BYTES
    session = SessionStore()
    # 1,500 characters, 3,000 bytes.
    session["é" * 1500] = 1

    with pytest.raises(SessionTooLarge):
        session.save()

    assert redis.dbsize() == 0


def test_sec41_one_byte_past_the_cap_is_refused_and_a_new_session_is_never_created(redis, settings):
    settings.SESSION_REDIS_MAX_BYTES = MAX_BYTES
    session = SessionStore()
    session["x"] = "a" * MAX_BYTES

    with pytest.raises(SessionTooLarge):
        session.save()

    assert redis.dbsize() == 0


def test_sec41_a_request_that_would_grow_a_session_past_the_cap_gets_the_400_page(user, password, redis, settings):
    client = Client(raise_request_exception=False)
    response = client.post("/accounts/login/", {"username": user.username, "password": password}, secure=True)
    session_key = response.cookies[COOKIE].value
    before = stored_fields(redis, session_key)
    settings.SESSION_REDIS_MAX_BYTES = len(b"".join(before.values())) + 100

    response = client.get("/test/remember/" + "v" * 500 + "/", secure=True)

    assert response.status_code == 400
    assert "Bad request (400)" in response.text
    assert "SESSION_REDIS_MAX_BYTES" not in response.text
    after = stored_fields(redis, session_key)
    assert b"d:remembered" not in after
    assert {k: v for k, v in after.items() if k != b"m:seen"} == {k: v for k, v in before.items() if k != b"m:seen"}
    # The session itself survives the refused write.
    assert client.get("/profile/", secure=True).status_code == 200


def test_sec41_the_cap_and_the_per_user_limit_are_set():
    assert 0 < settings.SESSION_REDIS_MAX_BYTES <= 64 * 1024
    assert 0 < settings.SESSION_REDIS_MAX_PER_USER <= 20
