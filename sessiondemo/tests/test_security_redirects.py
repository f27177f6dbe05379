"""
Where the site sends a browser: open redirects and default-deny pages.

SEC-31 (``next`` after login and logout stays on this host, over https) and
SEC-23 (every page that is not explicitly public sends anonymous visitors to
log in). See docs/security.md.
"""

import pytest
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.test import Client

from sessiondemo.tests.security_urls import site_get_urls

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME

# Django's own bad-URL corpus (tests/utils_tests/test_http.py, test_bad_urls),
# aimed at evil.example, plus a downgrade of this very host to http.
BAD_NEXT = [
    "http://evil.example",
    "http:///evil.example",
    "https://evil.example",
    "ftp://evil.example",
    "//evil.example",
    "///evil.example",
    "\\\\evil.example",
    "\\\\\\evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "\\//evil.example",
    "http:/\\/evil.example",
    "https:/\\/evil.example",
    "http:\\\\evil.example",
    "http:\\/evil.example",
    "http:\\//evil.example",
    "http:/\\evil.example",
    "https:\\\\evil.example",
    "http://testserver\\@evil.example",
    "http://testserver@evil.example",
    "http://evil.example\\@testserver",
    "javascript:alert(1)",
    "javascript://testserver/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "\x08//evil.example",
    "\x08http://evil.example",
    "\t//evil.example",
    " //evil.example",
    "http:999999999",
    "ftp:9999999999",
    "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
    "//%2Fevil.example",
    "http://testserver/profile/",  # same host, but http from an https page
]


def log_in(client, user, password, next_url):
    return client.post(
        "/accounts/login/",
        {"username": user.username, "password": password, "next": next_url},
        secure=True,
    )


# -- SEC-31: next after login and logout ---------------------------------------------


@pytest.mark.parametrize("next_url", BAD_NEXT)
def test_sec31_login_never_follows_next_off_this_host(next_url, user, password):
    client = Client()

    response = log_in(client, user, password, next_url)

    assert response.status_code == 302
    assert response["Location"] == settings.LOGIN_REDIRECT_URL
    assert COOKIE in response.cookies


@pytest.mark.parametrize("next_url", BAD_NEXT)
def test_sec31_login_never_follows_next_from_the_query_string_either(next_url, user, password):
    client = Client()

    response = client.post(
        "/accounts/login/",
        {"username": user.username, "password": password},
        QUERY_STRING=f"next={next_url}",
        secure=True,
    )

    assert response.status_code == 302
    assert response["Location"] == settings.LOGIN_REDIRECT_URL


@pytest.mark.parametrize("next_url", BAD_NEXT)
def test_sec31_logout_never_follows_next_off_this_host(next_url, user, password):
    client = Client()
    log_in(client, user, password, "")

    response = client.post("/accounts/logout/", {"next": next_url}, secure=True)

    assert response.status_code == 302
    assert response["Location"] == settings.LOGOUT_REDIRECT_URL


@pytest.mark.parametrize("next_url", ["/profile/", "/profile/edit/", "/accounts/sessions/?page=1"])
def test_sec31_a_path_on_this_site_is_followed(next_url, user, password):
    client = Client()

    login = log_in(client, user, password, next_url)
    logout = client.post("/accounts/logout/", {"next": next_url}, secure=True)

    assert login["Location"] == next_url
    assert logout["Location"] == next_url


def test_sec31_no_other_host_is_allowed_for_redirects():
    assert auth_views.LoginView.success_url_allowed_hosts == set()
    assert auth_views.LogoutView.success_url_allowed_hosts == set()
    assert settings.LOGIN_REDIRECT_URL.startswith("/") and not settings.LOGIN_REDIRECT_URL.startswith("//")
    assert settings.LOGOUT_REDIRECT_URL.startswith("/") and not settings.LOGOUT_REDIRECT_URL.startswith("//")


def test_sec31_the_login_form_does_not_echo_a_hostile_next_into_a_link_or_script():
    response = Client().get("/accounts/login/", {"next": '"><script>alert(1)</script>'}, secure=True)

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text


# -- SEC-23: default deny ---------------------------------------------------------------

# What an anonymous visitor may see: logging in, signing up, resetting a
# password (whose confirm page checks its own token), and the home page.
PUBLIC = {
    "home",
    "accounts:login",
    "accounts:signup",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
}
# POST-only: a GET is refused before anything else happens.
POST_ONLY = {"accounts:logout"}


def test_sec23_every_page_not_on_the_allowlist_sends_anonymous_visitors_to_log_in(redis):
    urls = site_get_urls()
    assert PUBLIC | POST_ONLY <= set(urls)

    for name, url in urls.items():
        for method in ("get", "post"):
            response = getattr(Client(), method)(url, secure=True)
            if name in PUBLIC:
                assert response.status_code in (200, 302, 403, 405), (name, method)
                continue
            if name in POST_ONLY and method == "get":
                assert response.status_code == 405, name
                continue
            if name in POST_ONLY:
                # An anonymous logout is harmless: it ends nothing and goes to the login page.
                assert response.status_code == 302 and response["Location"] == settings.LOGOUT_REDIRECT_URL
                continue
            assert response.status_code == 302, (name, method, response.status_code)
            assert response["Location"] == f"{settings.LOGIN_URL}?next={url}", (name, method)
            assert response.content == b"", name  # nothing of the page itself
    # None of it made a session.
    assert list(redis.scan_iter("sd:s:*")) == []


@pytest.mark.parametrize("url", ["/admin/", "/admin/accounts/user/", "/admin/accounts/user/1/change/", "/admin/auth/group/"])
def test_sec23_the_admin_sends_anonymous_visitors_to_its_login(url):
    response = Client().get(url, secure=True)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_sec23_a_logged_in_non_staff_user_is_kept_out_of_the_admin(user, password):
    client = Client()
    log_in(client, user, password, "")

    response = client.get("/admin/accounts/user/", secure=True)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
