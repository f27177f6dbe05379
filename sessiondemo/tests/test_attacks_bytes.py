"""
Hostile bytes and forged log lines (issue 7, items 10 and 19).

A request can carry text the site cannot use: a charset that decodes to lone
surrogates (UTF-7, unicode_escape), which no UTF-8 hash, Redis key, database
or page can hold; a "charset" Django cannot decode with (base64, undefined,
idna); a Content-Type Django cannot parse while it builds the request, before
any middleware runs; a NUL in a query string, which the admin hands to
PostgreSQL; an admin action on a selection that names no object, or a search
of thousands of terms. Each such request is the site's 400 page, costs no
Redis command and changes nothing; it is never a 500. Odd but valid text
(NUL, controls, RTL overrides, emoji, 100,000 characters) gets form errors.

Request data in a log line (a path, a method, an address from
X-Forwarded-For, a username) cannot start a line of its own: each event is
one record, and one line on the project's console, however the request
spells its newlines.
"""

import contextlib
import encodings
import encodings.aliases
import io
import logging
import pkgutil
from urllib.parse import quote
from wsgiref.util import setup_testing_defaults

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import User
from sessiondemo import logsafe
from sessiondemo.sessions.middleware import log_text
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.web import (
    browser,
    log_in,
    session_keys,
    stored,
    submit_login,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
BOUNDARY = "hostile-boundary"
# Python's UTF-7 codec decodes "+2D8-" to the lone surrogate U+D83F.
UTF7_SURROGATE = b"+2D8-"
FORMS = {
    "/accounts/login/": ["username", "password"],
    "/admin/login/": ["username", "password"],
    "/accounts/signup/": ["username", "email", "password1", "password2"],
    "/accounts/password_reset/": ["email"],
}


def part(disposition, value, *headers):
    """Return one multipart part: its Content-Disposition parameters, value and other headers."""
    head = [b"Content-Disposition: form-data; " + disposition, *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + value


def multipart(*parts):
    """Return a multipart/form-data body of ``parts``."""
    delimiter = b"--" + BOUNDARY.encode()
    return b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts) + delimiter + b"--\r\n"


def field(name, value):
    return part(b'name="' + name.encode() + b'"', value)


def post_multipart(client, path, body, charset=None):
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    if charset:
        content_type += f"; charset={charset}"
    return client.generic("POST", path, body, content_type=content_type, secure=True)


def assert_refused(response, redis, trips=None):
    """Assert the site's 400 page, no session cookie, no session in Redis, and no Redis command."""
    assert response.status_code == 400
    assert "Bad request (400)" in response.text
    assert COOKIE not in response.cookies
    assert session_keys(redis) == []
    if trips is not None:
        assert len(trips) == 0, trips.commands


# -- Lone surrogates, decoded from a charset the client chose -------------------------------


@pytest.mark.parametrize("path", FORMS)
@pytest.mark.parametrize(
    ("charset", "smuggled"),
    [("utf-7", UTF7_SURROGATE), ("unicode_escape", rb"\ud800"), ("raw_unicode_escape", rb"\udfff")],
)
def test_a_form_whose_charset_decodes_to_a_lone_surrogate_is_a_400(path, charset, smuggled, redis, round_trips):
    body = multipart(*(field(name, b"a" + smuggled) for name in FORMS[path]))

    with round_trips() as trips:
        response = post_multipart(Client(raise_request_exception=False), path, body, charset)

    assert_refused(response, redis, trips)


@pytest.mark.parametrize(
    "disposition",
    [b'name="+2D8-"', b'name="+2D8-"; filename="notes.txt"'],
    ids=["field", "file"],
)
def test_a_part_name_decoded_to_a_lone_surrogate_is_a_400(disposition, redis, round_trips):
    body = multipart(part(disposition, b"x"), field("username", b"alice"), field("password", b"wrong"))

    with round_trips() as trips:
        response = post_multipart(Client(raise_request_exception=False), "/accounts/login/", body, "utf-7")

    assert_refused(response, redis, trips)


def test_a_query_string_decoded_to_a_lone_surrogate_is_a_400(redis, round_trips):
    client = Client(raise_request_exception=False)

    with round_trips() as trips:
        response = client.get(
            "/accounts/login/?next=%2B2D8-", CONTENT_TYPE="text/plain; charset=utf-7", secure=True
        )

    assert_refused(response, redis, trips)


def test_the_admin_user_search_decoded_to_a_lone_surrogate_is_a_400(admin_client, redis):
    response = admin_client.get(
        "/admin/accounts/user/?q=%2B2D8-", CONTENT_TYPE="text/plain; charset=utf-7", secure=True
    )

    assert response.status_code == 400
    assert "Bad request (400)" in response.text
    # The administrator is still logged in.
    assert admin_client.get("/admin/accounts/user/?q=root", secure=True).status_code == 200


def test_a_failed_login_in_utf_8_still_gets_the_form_again(user, redis):
    body = multipart(field("username", user.username.encode()), field("password", "wrong é 🙂".encode()))

    response = post_multipart(Client(raise_request_exception=False), "/accounts/login/", body, "utf-8")

    assert response.status_code == 200
    assert 'role="alert"' in response.text


# -- NUL in a query string: PostgreSQL refuses it in text -----------------------------------

# Query strings reach database lookups without a form: the admin's list
# filters, its search and its autocomplete. Forms refuse NUL themselves.
NUL_QUERIES = [
    "/admin/accounts/user/?username=%00",
    "/admin/accounts/user/?q=a%00",
    "/admin/profiles/profile/?q=%00",
    "/admin/autocomplete/?term=%00&app_label=profiles&model_name=profile&field_name=user",
    "/admin/accounts/user/?%00=1",
]


@pytest.mark.parametrize("url", NUL_QUERIES)
def test_a_nul_in_an_admin_query_string_is_a_400(url, admin_client, redis):
    response = admin_client.get(url, secure=True)

    assert response.status_code == 400
    assert "Bad request (400)" in response.text
    assert admin_client.get("/admin/accounts/user/?q=root", secure=True).status_code == 200


def test_a_nul_in_the_login_pages_query_string_is_a_400_and_costs_redis_nothing(redis, round_trips):
    with round_trips() as trips:
        response = Client(raise_request_exception=False).get("/accounts/login/?next=/profile/%00", secure=True)

    assert_refused(response, redis, trips)


def test_a_nul_in_a_form_field_is_still_the_forms_own_error(user, redis):
    response = Client(raise_request_exception=False).post(
        "/accounts/login/", {"username": user.username + "\x00", "password": "x\x00"}, secure=True
    )

    assert response.status_code == 200
    assert 'role="alert"' in response.text


# -- Admin action selections: they reach a query without a form ---------------------------


@pytest.mark.parametrize("changelist", ["/admin/accounts/user/", "/admin/profiles/profile/", "/admin/auth/group/"])
@pytest.mark.parametrize("selected", ["abc", "1\x00", "9" * 30, "", "-1.5"])
def test_an_action_on_a_selection_that_names_no_object_is_a_400(changelist, selected, admin_client, user, redis):
    response = admin_client.post(
        changelist,
        {"action": "delete_selected", "index": "0", "_selected_action": [str(user.pk), selected]},
        secure=True,
    )

    assert response.status_code == 400
    assert "Bad request (400)" in response.text
    assert User.objects.filter(pk=user.pk).exists()


def test_an_action_on_real_objects_still_runs(admin_client, user, redis):
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "end_all_sessions", "index": "0", "_selected_action": [str(user.pk)]},
        secure=True,
    )

    assert response.status_code == 302


# -- Huge values -------------------------------------------------------------------------------

# Each search term is a clause of the query; SQLite refuses an expression
# more than 1000 deep. A request line of 4 KB (gunicorn's limit) holds 2,000.
MANY_TERMS = "a+" * 1500


@pytest.mark.parametrize(
    "url",
    [
        f"/admin/accounts/user/?q={MANY_TERMS}",
        f"/admin/profiles/profile/?q={MANY_TERMS}",
        f"/admin/autocomplete/?term={MANY_TERMS}&app_label=profiles&model_name=profile&field_name=user",
    ],
)
def test_an_admin_search_with_more_terms_than_anyone_types_is_a_400(url, admin_client, redis):
    response = admin_client.get(url, secure=True)

    assert response.status_code == 400
    assert "Bad request (400)" in response.text


def test_an_admin_search_with_a_few_long_terms_still_searches(admin_client, redis):
    response = admin_client.get("/admin/accounts/user/?q=" + "r" * 5000 + "+root", secure=True)

    assert response.status_code == 200


# -- Odd but valid text: each form answers with its own error or succeeds -------------------

ODD_TEXT = {
    "NUL": "a\x00b",
    "controls": "".join(map(chr, range(1, 32))) + "\x7f\x85",
    "RTL override": "\u202eevil\u202c",
    "emoji": "🙂👩🏽‍💻",
    "huge": "x" * 100_000,
    "markup": '"><script>alert(1)</script>',
}


@pytest.mark.parametrize("text", ODD_TEXT.values(), ids=ODD_TEXT)
def test_odd_text_in_every_form_field_is_a_form_error_or_success(text, redis):
    client = Client(raise_request_exception=False)
    for path, fields in FORMS.items():
        response = client.post(path, dict.fromkeys(fields, text), secure=True)

        assert response.status_code in (200, 302), path
    assert session_keys(redis) == []


def test_a_body_past_djangos_limits_is_a_400(redis, round_trips):
    client = Client(raise_request_exception=False)

    with round_trips() as trips:
        too_big = client.post("/accounts/login/", {"username": "x" * 3_000_000, "password": "x"}, secure=True)
        too_many = client.post("/accounts/login/", {f"f{n}": "x" for n in range(1_500)}, secure=True)

    assert (too_big.status_code, too_many.status_code) == (400, 400)
    assert "Bad request (400)" in too_big.text and "Bad request (400)" in too_many.text
    assert len(trips) == 0


@override_settings(TRUSTED_PROXY_COUNT=1)
@pytest.mark.parametrize("text", ODD_TEXT.values(), ids=ODD_TEXT)
def test_odd_text_in_the_headers_a_session_keeps_is_shown_escaped(text, user, password, admin_client, redis):
    client = Client(raise_request_exception=False, HTTP_USER_AGENT=text, HTTP_X_FORWARDED_FOR=text)

    assert submit_login(client, user, password).status_code == 302
    assert client.get("/profile/", secure=True).status_code == 200
    mine = client.get("/accounts/sessions/", secure=True)
    theirs = admin_client.get(f"/admin/accounts/user/{user.pk}/change/", secure=True)
    for page in (mine, theirs):
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text


# -- Content-Types that break the request while Django builds it ---------------------------

# Django raises these from the request's constructor, outside every middleware:
# the server, not the site, answered 500.
UNREADABLE_CONTENT_TYPES = {
    "codec that is no text encoding": f"multipart/form-data; boundary={BOUNDARY}; charset=base64",
    "another one": f"multipart/form-data; boundary={BOUNDARY}; charset=rot13",
    "codec that decodes nothing": f"multipart/form-data; boundary={BOUNDARY}; charset=undefined",
    "codec that splits the query string": f"multipart/form-data; boundary={BOUNDARY}; charset=idna",
    "RFC 2231 charset unknown": f"multipart/form-data; boundary={BOUNDARY}; charset*=nope''utf-8",
    "longer than Django parses": f"multipart/form-data; boundary={BOUNDARY}; x={'x' * 10_000}",
}
LOGIN_BODY = multipart(field("username", b"alice"), field("password", b"wrong"))


@contextlib.contextmanager
def connections_kept():
    # As Django's test client does: the request signals would close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def through_wsgi(method, path, headers, body=b"", query=""):
    """
    Send a request through the project's WSGI application, as a server would; return (status, page).

    ``headers`` maps names to the raw bytes of their values; the environ holds
    them as PEP 3333 says, decoded as ISO-8859-1.
    """
    from sessiondemo.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "testserver",
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value.decode("latin-1")
    setup_testing_defaults(environ)
    started = []
    with connections_kept():
        result = application(environ, lambda status, headers, exc_info=None: started.append(status))
        try:
            page = b"".join(result).decode()
        finally:
            result.close()
    return int(started[0].split()[0]), page


def through_asgi(method, path, headers, body=b"", query=""):
    """Send a request through the project's ASGI application, as a server would; return (status, page)."""
    from sessiondemo.asgi import application

    headers = {"host": b"testserver", **{name.lower(): value for name, value in headers.items()}}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(name.encode(), value) for name, value in headers.items()],
        "server": ("testserver", 443),
        "client": ("127.0.0.1", 50000),
    }

    async def exchange():
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await communicator.receive_output(timeout=5)
        chunks = []
        while True:
            message = await communicator.receive_output(timeout=5)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        return start["status"], b"".join(chunks).decode()

    with connections_kept():
        return async_to_sync(exchange)()


def login_post(through, content_type, body, method="POST"):
    headers = {"Content-Type": content_type.encode("latin-1")}
    return through(method, "/accounts/login/", headers, body, query="next=/profile/")


@pytest.mark.parametrize("content_type", UNREADABLE_CONTENT_TYPES.values(), ids=UNREADABLE_CONTENT_TYPES)
@pytest.mark.parametrize("through", [through_wsgi, through_asgi], ids=["wsgi", "asgi"])
def test_a_content_type_django_cannot_read_is_the_sites_400_page(through, content_type, redis, round_trips):
    with round_trips() as trips:
        status, page = login_post(through, content_type, LOGIN_BODY)

    assert status == 400
    assert "Bad request (400)" in page
    assert len(trips) == 0
    assert session_keys(redis) == []


@pytest.mark.parametrize("charset", ["base64", "rot13", "hex", "zlib", "undefined", "idna"])
def test_a_charset_that_is_no_text_encoding_is_a_400(charset, redis, round_trips):
    with round_trips() as trips:
        response = post_multipart(Client(raise_request_exception=False), "/accounts/login/", LOGIN_BODY, charset)

    assert_refused(response, redis, trips)


# Every codec Python knows by any name, aliases included.
ALL_CODECS = sorted(
    {module.name for module in pkgutil.iter_modules(encodings.__path__)} - {"aliases"}
    | set(encodings.aliases.aliases)
)


def test_no_charset_python_knows_breaks_a_login(redis):
    body = multipart(
        field("username", b"al+2D8-ice\\ud800\xff\xfe"),
        field("password", b"a.b..c\x80\x00"),
        part(b'name="upload"; filename="+2D8-\xff.txt"', b"\xff\xfe"),
    )
    answers = {}
    for charset in ALL_CODECS:
        content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"
        answers[charset] = login_post(through_wsgi, content_type, body)[0]

    # 400, or CSRF's 403 for a body the site could read; never a 500, nor an exception.
    assert {charset: status for charset, status in answers.items() if status not in (400, 403)} == {}
    assert len(answers) > 300


@pytest.mark.parametrize("through", [through_wsgi, through_asgi], ids=["wsgi", "asgi"])
def test_the_applications_still_serve_the_login_page_and_refuse_a_post_without_a_csrf_token(through, redis):
    readable = f"multipart/form-data; boundary={BOUNDARY}; charset=utf-8"

    status, page = login_post(through, readable, b"", method="GET")
    assert status == 200
    assert "<h1>Log in</h1>" in page
    # The real handlers check CSRF tokens, unlike the test client.
    status, page = login_post(through, readable, LOGIN_BODY)
    assert status == 403



# -- Forged log lines ------------------------------------------------------------------------

FAKE_TIME = "2026-12-01 09:00:00,000"
FAKE_RECORD = f"{FAKE_TIME} CRITICAL sessiondemo.sessions: FORGED root logged in from 10.0.0.1"
# Whatever a log reader may take for the end of a line.
NEWLINES = {"LF": "\n", "CRLF": "\r\n", "CR": "\r", "NEL": "\x85", "LINE SEPARATOR": "\u2028"}
# Where nothing listens: every session read or write is an outage.
NOWHERE = "redis://127.0.0.1:9/0"


@pytest.fixture
def console():
    """Return a function that gives the lines the project's configured console handler wrote."""
    handler = logging.getHandlerByName("console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: stream.getvalue().splitlines()
    handler.setStream(previous)


def assert_one_line(console, caplog, logger, words):
    """
    Assert one record from ``logger`` with ``words``, written as one line.

    On the project's console (its configured handler), and in caplog's text,
    whose handler the project did not configure: the call site escapes too.
    """
    records = [r for r in caplog.records if r.name == logger and words in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in records]
    # The request's text is escaped in the line, or (an address that does not parse) left out.
    [line] = [line for line in console() if words in line]
    assert logger in line
    assert not [line for line in console() if line.startswith(FAKE_TIME)]
    assert not [line for line in caplog.text.splitlines() if line.startswith(FAKE_TIME)]


@pytest.mark.urls("sessiondemo.tests.security_urls")
@pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES)
def test_a_path_cannot_forge_a_line_of_the_outage_log(newline, console, caplog, redis):
    path = "/test/remember/" + quote(f"x{newline}{FAKE_RECORD}", safe="") + "/"

    with sessions_at(NOWHERE):
        response = Client(raise_request_exception=False).get(path, secure=True)

    assert response.status_code == 503
    assert_one_line(console, caplog, "sessiondemo.sessions", "Session store unavailable for GET /test/remember/x")


@pytest.mark.urls("sessiondemo.tests.security_urls")
def test_a_method_cannot_forge_a_line_of_the_outage_log(console, caplog, redis):
    with sessions_at(NOWHERE):
        response = Client(raise_request_exception=False).generic(
            f"GET\n{FAKE_RECORD}", "/test/remember/x/", secure=True
        )

    assert response.status_code == 503
    assert_one_line(console, caplog, "sessiondemo.sessions", "Session store unavailable for GET")


@override_settings(TRUSTED_PROXY_COUNT=1, SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE=1)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_forwarded_address_cannot_forge_a_line_of_the_guessed_ids_log(newline, console, caplog, redis):
    client = Client(raise_request_exception=False, HTTP_X_FORWARDED_FOR=f"203.0.113.7{newline}{FAKE_RECORD}")
    client.cookies[COOKIE] = "a" * 32

    assert client.get("/profile/", secure=True).status_code == 429
    assert_one_line(console, caplog, "django.security.sessiondemo.sessions", "Unknown session ids from one client")


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_a_forwarded_address_cannot_forge_a_line_of_the_user_agent_log(user, password, console, caplog, redis):
    victim = browser()
    session_id = log_in(victim, user, password)
    thief = Client(HTTP_USER_AGENT=f"curl{chr(10)}{FAKE_RECORD}", HTTP_X_FORWARDED_FOR=f"203.0.113.66\n{FAKE_RECORD}")
    thief.cookies[COOKIE] = session_id

    assert thief.get("/profile/", secure=True).status_code == 200
    assert_one_line(console, caplog, "django.security.sessiondemo.sessions", "another User-Agent")


@override_settings(TRUSTED_PROXY_COUNT=1)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_username_and_address_cannot_forge_a_line_of_the_lockout_log(newline, user, console, caplog, redis):
    user.username = f"alice{newline}{FAKE_RECORD}"
    for _ in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT):
        client = Client(raise_request_exception=False, HTTP_X_FORWARDED_FOR=f"203.0.113.9{newline}{FAKE_RECORD}")
        submit_login(client, user, "wrong")

    assert_one_line(console, caplog, "django.security.sessiondemo.login", "Login locked after repeated failures")


def test_any_record_of_any_logger_is_one_line_on_the_console_and_keeps_its_traceback(console):
    for name in ("sessiondemo.anything", "django.security.anything", "django.request", "accounts"):
        try:
            raise ValueError("the cause")
        except ValueError:
            logging.getLogger(name).error("Refused %s", f"x\r\n{FAKE_RECORD}", exc_info=True)

    lines = console()
    assert not [line for line in lines if line.startswith(FAKE_TIME)]
    forged = [line for line in lines if "FORGED" in line]
    assert len(forged) == 4
    # The traceback follows each record, line by line, as Python wrote it.
    assert lines.count("ValueError: the cause") == 4
    assert sum(line.startswith("Traceback (most recent call last):") for line in lines) == 4




# Any text at all, lone surrogates and every control character included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=100)
PROPERTY = hypothesis_settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# The site's escaping, and the session engine's own (it imports nothing of the site).
ESCAPERS = {"logsafe.text": logsafe.text, "sessions.middleware.log_text": log_text}


@pytest.mark.parametrize("escape", ESCAPERS.values(), ids=ESCAPERS)
@PROPERTY
@given(value=ANY_TEXT)
def test_logsafe_text_is_one_line_that_reads_back_as_the_value(escape, value):
    escaped = escape(value)

    assert len(escaped.splitlines()) <= 1
    escaped.encode()  # a log file can hold it
    # Unambiguous: Python's own unescaping gives the value back.
    assert escaped.encode("latin-1", "backslashreplace").decode("unicode_escape") == value


@PROPERTY
@given(value=ANY_TEXT, logger=st.sampled_from(["sessiondemo.x", "django.request", "django.security.x", "accounts"]))
def test_any_message_of_any_logger_is_one_line_on_the_console(value, logger, console):
    before = len(console())

    logging.getLogger(logger).warning("value=%s", value)

    assert len(console()) == before + 1

# -- Odd bytes in Host and in the session cookie, as a server hands them over ----------------

ODD_BYTES = {
    "latin-1": b"\xff\xfe",
    "UTF-8": "é".encode(),
    "CESU-8 surrogate": b"\xed\xa0\x80",
    "NUL": b"a\x00b",
    "bracket": b"[",
    "long": b"x" * 5000,
}


@pytest.mark.parametrize("host", ODD_BYTES.values(), ids=ODD_BYTES)
@pytest.mark.parametrize("through", [through_wsgi, through_asgi], ids=["wsgi", "asgi"])
def test_a_host_with_odd_bytes_is_the_sites_400_page_at_no_redis_cost(through, host, redis, round_trips):
    with round_trips() as trips:
        status, page = through("GET", "/profile/", {"Host": host, "Cookie": f"{COOKIE}={'a' * 32}".encode()})

    assert status == 400
    assert "Bad request (400)" in page
    assert len(trips) == 0


@pytest.mark.parametrize(
    "value", [*ODD_BYTES.values(), b"a" * 31 + b"\xff", "é".encode() * 16], ids=[*ODD_BYTES, "31 + 1", "16 é"]
)
@pytest.mark.parametrize("through", [through_wsgi, through_asgi], ids=["wsgi", "asgi"])
def test_a_session_cookie_with_odd_bytes_is_an_anonymous_visitor_at_no_redis_cost(through, value, redis, round_trips):
    with round_trips() as trips:
        status, page = through("GET", "/profile/", {"Cookie": COOKIE.encode() + b"=" + value})

    assert status == 302
    assert len(trips) == 0
    assert session_keys(redis) == []


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_a_forwarded_address_that_is_no_address_is_never_stored_or_shown(user, password, redis):
    client = Client(HTTP_X_FORWARDED_FOR="<b>not-an-ip</b>\r\nX: 1")
    session_id = log_in(client, user, password)

    assert stored(redis, session_id).ip == ""
    page = client.get("/accounts/sessions/", secure=True).text
    assert "not-an-ip" not in page and "unknown" in page
