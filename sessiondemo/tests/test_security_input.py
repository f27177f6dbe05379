"""
Property tests (hypothesis) over what a client controls: cookie headers, other
headers, form fields (also in multipart bodies in odd charsets) and the
admin's forms; and over what the site stores: session payloads.

SEC-03 (any cookie: no 500, no Redis command for an id outside the format),
SEC-40 (no anonymous request creates a key), SEC-41 (the size cap refuses and
writes nothing) and SEC-42 (JSON values round-trip exactly). See
docs/security.md. Hostile bytes: whatever the client sends is a page, a form
error or the 400 page, never a 500 (test_attacks_bytes.py has the examples).
"""

import json
import re
import string
from urllib.parse import quote_from_bytes

import pytest
from django.conf import settings
from django.http.cookie import parse_cookie
from django.template.defaultfilters import linebreaksbr
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from profiles.models import Profile
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.exceptions import SessionTooLarge
from sessiondemo.testing.web import redis_key, session_keys, stored, submit_login

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
# Every request is a login or a page; no example may lock an account or a client out.
UNTHROTTLED = override_settings(
    SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE=10**6,
    ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT=10**6,
    ACCOUNTS_LOGIN_FAILURES_PER_IP=10**6,
)


# -- SEC-03 / SEC-40: any cookie header -------------------------------------------------


@PROPERTY
@given(value=COOKIE_VALUES, path=st.sampled_from(ANONYMOUS_PATHS), raw=st.booleans())
def test_sec03_any_session_cookie_is_an_anonymous_visitor_and_costs_redis_nothing_unless_well_formed(
    value, path, raw, redis, round_trips
):
    others = f"{settings.CSRF_COOKIE_NAME}={value}; messages={value}; x={value}"
    header = f"{COOKIE}={value}" if raw else f"other=1; {COOKIE}={json.dumps(value)}; {others}"
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


# -- Multipart bodies in odd charsets: the form again or the 400 page ---------------------

# Django decodes form fields in the request's charset, part names and file
# names too; RFC 2231 parameters (name*=, filename*=) name a charset of their own.
CHARSETS = [
    "utf-8", "utf-7", "utf-16", "utf-16-be", "latin-1", "cp1252", "shift_jis", "unicode_escape", "no-such-charset"
]
BOUNDARY = "property-boundary"
# Bytes that decode to something odd in one charset or another: lone
# surrogates (UTF-7, unicode_escape, CESU-8), a BOM, NUL, line breaks.
HOSTILE_BYTES = st.sampled_from(
    [b"+2D8-", b"+3/8-", b"\\ud800", b"\\udfff", b"\xed\xa0\x80", b"\xff\xfe", b"\xfe\xff"]
    + [b"\x00", b"\r\n", b"%00", b"\x81"]
)


def encoded(text, charset):
    try:
        return text.encode(charset, errors="replace")
    except LookupError:
        return text.encode()


def part(disposition, value, *headers):
    head = [b"Content-Disposition: form-data; " + disposition, *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + value


@st.composite
def multipart_logins(draw):
    """Return (body, Content-Type) of a login form whose bytes and charsets are the client's choice."""
    charset = draw(st.sampled_from(CHARSETS))

    def value():
        return draw(
            st.one_of(
                FORM_TEXT.map(lambda text: encoded(text, charset)),
                st.binary(max_size=64),
                st.lists(st.one_of(HOSTILE_BYTES, st.binary(max_size=8)), max_size=4).map(b"".join),
            )
        )

    def headers():
        if draw(st.booleans()):
            return [f"Content-Type: text/plain; charset={draw(st.sampled_from(CHARSETS))}".encode()]
        return []

    parts = [part(b'name="username"', value(), *headers()), part(b'name="password"', value(), *headers())]
    raw_name = value().replace(b'"', b"").replace(b"\r", b"").replace(b"\n", b"")
    extra = draw(st.sampled_from(["none", "name", "file", "rfc2231 name", "rfc2231 file"]))
    if extra == "name":
        parts.append(part(b'name="' + raw_name + b'"', value(), *headers()))
    elif extra == "file":
        parts.append(part(b'name="upload"; filename="' + raw_name + b'"', value(), *headers()))
    elif extra.startswith("rfc2231"):
        param = b"name*=" if extra == "rfc2231 name" else b'name="upload"; filename*='
        named = f"{draw(st.sampled_from(CHARSETS))}''{quote_from_bytes(value())}".encode()
        parts.append(part(param + named, value(), *headers()))
    delimiter = b"--" + BOUNDARY.encode()
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts) + delimiter + b"--\r\n"
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    if request_charset := draw(st.sampled_from([None, *CHARSETS])):
        content_type += f"; charset={request_charset}"
    return body, content_type


@PROPERTY
@given(login=multipart_logins(), path=st.sampled_from(["/accounts/login/", "/admin/login/"]))
def test_a_multipart_login_in_any_charset_is_the_form_again_or_the_400_page(login, path, redis, round_trips):
    body, content_type = login

    with UNTHROTTLED, round_trips() as trips:
        response = Client(raise_request_exception=False).generic(
            "POST", path, body, content_type=content_type, secure=True
        )

    event(f"status {response.status_code}")
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "Bad request (400)" in response.text
        assert len(trips) == 0
    else:
        assert 'role="alert"' in response.text or 'class="errornote"' in response.text
    assert COOKIE not in response.cookies
    assert session_keys(redis) == []


# -- Any header: a page, or the 400 page for a Host the site does not serve -----------------

HEADERS = st.fixed_dictionaries(
    {"HTTP_HOST": st.one_of(st.just("testserver"), HEADER_TEXT)},
    optional={
        name: HEADER_TEXT
        for name in (
            "HTTP_USER_AGENT",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_REFERER",
            "HTTP_ORIGIN",
            "HTTP_ACCEPT_LANGUAGE",
            "HTTP_ACCEPT",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_IF_NONE_MATCH",
            "HTTP_IF_MODIFIED_SINCE",
        )
    },
)


@PROPERTY
@given(headers=HEADERS)
def test_any_headers_get_a_page_or_the_400_page_and_a_login_keeps_them_harmlessly(
    headers, user, password, redis, round_trips
):
    with UNTHROTTLED, override_settings(TRUSTED_PROXY_COUNT=1):
        anonymous = Client(raise_request_exception=False, enforce_csrf_checks=True, **headers)
        with round_trips() as trips:
            page = anonymous.get("/accounts/login/", secure=True)
        event("bad Host" if page.status_code == 400 else "logged in")
        assert page.status_code in (200, 400)
        if page.status_code == 400:
            # A Host the site does not serve.
            assert "Bad request (400)" in page.text
            assert len(trips) == 0
            return
        # The CSRF check reads Referer and Origin.
        token = anonymous.cookies[settings.CSRF_COOKIE_NAME].value
        refused = anonymous.post(
            "/accounts/login/",
            {"username": user.username, "password": "wrong", "csrfmiddlewaretoken": token},
            secure=True,
        )
        assert refused.status_code in (200, 403)

        # The session keeps the User-Agent and the address; "Your sessions" shows them.
        visitor = Client(raise_request_exception=False, **headers)
        assert submit_login(visitor, user, password).status_code == 302
        assert visitor.get("/profile/", secure=True).status_code == 200
        assert visitor.get("/accounts/sessions/", secure=True).status_code == 200


# -- The admin's forms, as a logged-in superuser ---------------------------------------------

ADMIN_PROPERTY = hypothesis_settings(PROPERTY, max_examples=30)


@PROPERTY
@given(username=FORM_TEXT, password=FORM_TEXT)
def test_the_admin_login_never_errors_whatever_the_fields(username, password, redis):
    with UNTHROTTLED:
        response = Client(raise_request_exception=False).post(
            "/admin/login/", {"username": username, "password": password}, secure=True
        )

    assert response.status_code == 200
    assert 'class="errornote"' in response.text
    assert session_keys(redis) == []


@ADMIN_PROPERTY
@given(q=FORM_TEXT, changelist=st.sampled_from(["/admin/accounts/user/", "/admin/profiles/profile/"]))
def test_the_admin_search_answers_any_query(q, changelist, admin_client):
    response = admin_client.get(changelist, {"q": q}, secure=True)

    # A NUL is refused before it reaches PostgreSQL, which cannot store it in text.
    assert response.status_code == (400 if "\x00" in q else 200)


@ADMIN_PROPERTY
@given(username=FORM_TEXT, password1=FORM_TEXT, password2=FORM_TEXT)
def test_the_admin_add_user_form_never_errors(username, password1, password2, admin_client):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {"username": username, "usable_password": "true", "password1": password1, "password2": password2},
        secure=True,
    )

    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert 'class="errornote"' in response.text


@ADMIN_PROPERTY
@given(username=FORM_TEXT, first_name=FORM_TEXT, last_name=FORM_TEXT, email=FORM_TEXT)
def test_the_admin_change_user_form_never_errors_and_shows_what_it_saved_escaped(
    username, first_name, last_name, email, admin_client, user
):
    url = reverse("admin:accounts_user_change", args=[user.pk])
    data = {
        "username": username,
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }

    response = admin_client.post(url, data, secure=True)

    assert response.status_code in (200, 302)
    if response.status_code == 302:
        user.refresh_from_db()
        page = admin_client.get(url, secure=True)
        assert page.status_code == 200
        for value in (user.username, user.first_name, user.last_name, user.email):
            if value:
                assert f'value="{escape(value)}"' in page.text


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


def stored_bytes(redis, session_key):
    """Return the session's data exactly as Redis holds it (JSON, once uncompressed)."""
    return stored(redis, session_key).data


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
    assert json.loads(stored_bytes(redis, session.session_key)) == second  # stored as JSON


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
        before = redis.get(redis_key(session.session_key))

        session[key] = "x" * size
        try:
            session.save()
        except SessionTooLarge:
            # Nothing changed in Redis.
            assert redis.get(redis_key(session.session_key)) == before
            assert dict(SessionStore(session.session_key).items()) == start
        else:
            assert len(stored_bytes(redis, session.session_key)) <= MAX_BYTES
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
    before = redis.get(redis_key(session_key))
    settings.SESSION_REDIS_MAX_BYTES = len(stored_bytes(redis, session_key)) + 100

    response = client.get("/test/remember/" + "v" * 500 + "/", secure=True)

    assert response.status_code == 400
    assert "Bad request (400)" in response.text
    assert "SESSION_REDIS_MAX_BYTES" not in response.text
    assert redis.get(redis_key(session_key)) == before
    # The session itself survives the refused write.
    assert client.get("/profile/", secure=True).status_code == 200


def test_sec41_the_cap_and_the_per_user_limit_are_set():
    assert 0 < settings.SESSION_REDIS_MAX_BYTES <= 64 * 1024
    assert 0 < settings.SESSION_REDIS_MAX_PER_USER <= 20
