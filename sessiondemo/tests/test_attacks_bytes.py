"""
Hostile bytes (issue 7, item 10).

A request can carry text the site cannot use: a charset that decodes to lone
surrogates (UTF-7, unicode_escape), which no UTF-8 hash, Redis key, database
or page can hold. Each such request is the site's 400 page, costs no Redis
command and changes nothing; it is never a 500.
"""

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from sessiondemo.testing.web import session_keys

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


@pytest.fixture
def admin_client(password):
    User.objects.create_superuser("root", "root@example.com", password)
    client = Client(raise_request_exception=False)
    response = client.post("/admin/login/", {"username": "root", "password": password}, secure=True)
    assert response.status_code == 302
    return client


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
