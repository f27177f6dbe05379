"""
Response headers and error pages, on every kind of response the site gives.

SEC-22 (every authenticated page offers logout), SEC-34 (HTTPS redirect and
HSTS), SEC-35 (CSP), SEC-36 (anti-framing, nosniff, Referrer-Policy, COOP),
SEC-37 (no caching of session pages) and SEC-39 (generic error pages, DEBUG
off, bad Host refused). See docs/security.md.
"""

import re

import pytest
from django.conf import settings
from django.test import Client, override_settings

from sessiondemo.testing.redis_server import free_port
from sessiondemo.testing.store import sessions_at
from sessiondemo.testing.web import log_in, log_in_response
from sessiondemo.tests.security_urls import SECRET_DETAIL, site_get_urls

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sessiondemo.tests.security_urls")]

COOKIE = settings.SESSION_COOKIE_NAME
ONE_YEAR = 365 * 24 * 60 * 60


def sample_responses(user, password):
    """One response of each kind the site gives: {label: response}."""
    anonymous = Client(raise_request_exception=False)
    csrf = Client(enforce_csrf_checks=True)
    logged_in = Client(raise_request_exception=False)
    login = log_in_response(logged_in, user, password)
    return {
        "200 home": anonymous.get("/", secure=True),
        "200 login form": anonymous.get("/accounts/login/", secure=True),
        "200 profile": logged_in.get("/profile/", secure=True),
        "302 login": login,
        "302 anonymous profile": anonymous.get("/profile/", secure=True),
        "403 csrf": csrf.post("/accounts/login/", {"username": "x", "password": "y"}, secure=True),
        "404": anonymous.get("/no/such/page/", secure=True),
        "405 logout by GET": logged_in.get("/accounts/logout/", secure=True),
        "500": anonymous.get("/test/boom/", secure=True),
    }


def directives(policy):
    """Parse a CSP header into {directive: [sources]}."""
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


# -- SEC-34: HTTPS only ------------------------------------------------------------


def test_sec34_production_settings_redirect_to_https_with_a_year_of_hsts():
    # The test settings turn the redirect off for the live-server browser
    # tests; the deploy checks (test_security_checks.py) run the production
    # module, where it is on.
    assert settings.SECURE_HSTS_SECONDS >= ONE_YEAR
    assert settings.SECURE_HSTS_INCLUDE_SUBDOMAINS is True
    assert getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is None


@override_settings(SECURE_SSL_REDIRECT=True)
@pytest.mark.parametrize("path", ["/", "/accounts/login/?next=/profile/", "/profile/", "/no/such/page/"])
def test_sec34_plain_http_is_redirected_to_https(path, redis):
    client = Client()

    response = client.get(path)

    assert response.status_code == 301
    assert response["Location"] == f"https://testserver{path}"
    assert COOKIE not in response.cookies
    assert redis.dbsize() == 0


@override_settings(SECURE_SSL_REDIRECT=True)
def test_sec34_a_plain_http_login_post_is_not_processed(user, password, redis):
    response = Client().post("/accounts/login/", {"username": user.username, "password": password})

    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert COOKIE not in response.cookies
    assert redis.dbsize() == 0


def test_sec34_every_secure_response_carries_hsts_of_a_year_with_subdomains(user, password):
    for label, response in sample_responses(user, password).items():
        hsts = response.get("Strict-Transport-Security", "")
        max_age = re.search(r"max-age=(\d+)", hsts)
        assert max_age and int(max_age.group(1)) >= ONE_YEAR, label
        assert "includeSubDomains" in hsts, label


# -- SEC-35: Content Security Policy ---------------------------------------------------


def test_sec35_every_response_has_a_restrictive_csp(user, password):
    for label, response in sample_responses(user, password).items():
        policy = directives(response["Content-Security-Policy"])
        assert policy["object-src"] == ["'none'"], label
        assert policy["base-uri"] == ["'none'"], label
        assert policy["frame-ancestors"] == ["'none'"], label
        assert policy["default-src"] == ["'self'"], label
        scripts = policy.get("script-src", policy["default-src"])
        assert not [s for s in scripts if "unsafe" in s or s in ("*", "data:", "http:", "https:")], label


def test_sec35_inline_scripts_run_only_with_a_fresh_nonce_per_response():
    client = Client()
    nonces = []
    for _ in range(2):
        response = client.get("/test/nonce/", secure=True)
        script_src = directives(response["Content-Security-Policy"])["script-src"]
        [nonce] = [s[len("'nonce-") : -1] for s in script_src if s.startswith("'nonce-")]
        assert f'nonce="{nonce}"' in response.text
        nonces.append(nonce)

    assert nonces[0] != nonces[1]
    assert len(nonces[0]) >= 16


def test_sec35_the_site_has_no_inline_script_without_a_nonce(user, password):
    client = Client()
    log_in_response(client, user, password)
    for name, url in site_get_urls().items():
        response = client.get(url, secure=True)
        for tag in re.findall(r"<script\b[^>]*>", response.content.decode()):
            assert "nonce=" in tag or "src=" in tag, (name, tag)
        assert not re.search(r"\son[a-z]+\s*=", response.content.decode()), name


# -- SEC-36: framing, sniffing, referrers, opener ---------------------------------------


def test_sec36_every_response_forbids_framing_and_sniffing_and_limits_referrers(user, password):
    for label, response in sample_responses(user, password).items():
        assert response["X-Frame-Options"] == "DENY", label
        assert response["X-Content-Type-Options"] == "nosniff", label
        assert response["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer"), label
        if response.get("Content-Type", "").startswith("text/html"):
            assert response["Cross-Origin-Opener-Policy"] == "same-origin", label


def assert_protective_headers(response):
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "Strict-Transport-Security" in response


def test_sec36_the_throttled_page_carries_the_headers_too(settings):
    settings.SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 1
    guesser = Client()
    guesser.cookies[COOKIE] = "0" * 32

    response = guesser.get("/profile/", secure=True)

    assert response.status_code == 429
    assert_protective_headers(response)


def test_sec36_the_unavailable_page_carries_the_headers_too():
    client = Client(raise_request_exception=False)
    client.cookies[COOKIE] = "0" * 32

    # Nothing listens on this loopback port: the session store is down.
    with sessions_at(f"redis://127.0.0.1:{free_port()}/0"):
        response = client.get("/profile/", secure=True)

    assert response.status_code == 503
    assert_protective_headers(response)


def test_sec36_the_bad_host_page_forbids_framing_too():
    response = Client(raise_request_exception=False).get("/", HTTP_HOST="evil.example", secure=True)

    assert response.status_code == 400
    assert response.get("X-Frame-Options") == "DENY"
    assert "frame-ancestors 'none'" in response.get("Content-Security-Policy", "")


# -- SEC-37: no caching of what a session touched ---------------------------------------


def cache_directives(response):
    return {d.strip().split("=")[0] for d in response.get("Cache-Control", "").split(",")}


def test_sec37_logged_in_pages_and_the_login_answer_are_private_uncacheable_and_vary_on_cookie(user, password):
    client = Client()
    login = log_in_response(client, user, password)
    pages = {"login POST": login}
    for name, url in site_get_urls().items():
        response = client.get(url, secure=True)
        if response.status_code == 200:
            pages[name] = response
    pages["profile edit POST"] = client.post("/profile/edit/", {"display_name": "A", "bio": ""}, secure=True)
    pages["logout POST"] = client.post("/accounts/logout/", secure=True)

    assert "profiles:detail" in pages and "accounts:session_list" in pages
    for label, response in pages.items():
        assert {"no-store", "private"} <= cache_directives(response), label
        assert "Cookie" in response.get("Vary", ""), label


def test_sec37_a_failed_login_is_not_cacheable_either(user):
    response = Client().post("/accounts/login/", {"username": user.username, "password": "wrong"}, secure=True)

    assert response.status_code == 200
    assert "no-store" in cache_directives(response)


# -- SEC-22: every authenticated page offers logout ----------------------------------------

LOGOUT_FORM = re.compile(
    r'<form[^>]*method="post"[^>]*action="/accounts/logout/"[^>]*>\s*'
    r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">'
)


def test_sec22_every_authenticated_html_page_has_a_logout_form_with_a_csrf_token(user, password):
    client = Client()
    log_in_response(client, user, password)
    crawled = []
    for name, url in site_get_urls().items():
        response = client.get(url, secure=True)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        crawled.append(name)
        assert LOGOUT_FORM.search(response.text), name

    assert {"home", "profiles:detail", "profiles:edit", "accounts:session_list", "accounts:password_change"} <= set(crawled)


# -- SEC-39: generic errors, DEBUG off, bad Host refused ----------------------------------

LEAKS = ["Traceback", 'File "', "RuntimeError", SECRET_DETAIL, "SECRET_KEY", "REDIS_URL", "DATABASES", "redis://", "sqlite", "django.", "settings"]


def assert_generic(response):
    for leak in LEAKS:
        assert leak not in response.text, leak
    assert "Back to the home page" in response.text


def test_sec39_debug_is_off():
    assert settings.DEBUG is False


def test_sec39_a_crash_shows_the_sites_500_page_and_nothing_of_the_crash(caplog):
    response = Client(raise_request_exception=False).get("/test/boom/", secure=True)

    assert response.status_code == 500
    assert "Something went wrong (500)" in response.text
    assert_generic(response)
    # The details go to the log, for the operators.
    assert any(SECRET_DETAIL in str(r.exc_info) for r in caplog.records if r.name == "django.request")


def test_sec39_a_crash_of_a_logged_in_request_leaks_nothing_either(user, password):
    client = Client(raise_request_exception=False)
    session_id = log_in(client, user, password)

    response = client.get("/test/boom/", secure=True)

    assert response.status_code == 500
    assert_generic(response)
    assert session_id not in response.text and user.username not in response.text


@pytest.mark.parametrize("host", ["evil.example", "testserver.evil.example", "localhost:8000@evil.example", "bad host"])
def test_sec39_a_bad_host_gets_the_sites_400_page(host, redis):
    response = Client(raise_request_exception=False).get("/", HTTP_HOST=host, secure=True)

    assert response.status_code == 400
    assert "Bad request (400)" in response.text
    assert_generic(response)
    assert host not in response.text
    assert redis.dbsize() == 0


def test_sec39_the_allowed_hosts_are_explicit():
    assert "*" not in settings.ALLOWED_HOSTS
    assert all(not host.startswith(".") for host in settings.ALLOWED_HOSTS)


def test_sec39_a_csrf_failure_shows_the_generic_403_page(user, password):
    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    )

    assert response.status_code == 403
    assert "The form could not be verified" in response.text
    assert_generic(response)
    for reason in ("CSRF", "Referer", "Origin", "token"):
        assert reason not in response.text, reason


def test_sec39_a_404_names_nothing_of_the_url_configuration():
    response = Client().get("/no/such/page/", secure=True)

    assert response.status_code == 404
    assert "There is nothing at this address" in response.text
    assert_generic(response)
    assert "urlpatterns" not in response.text and "accounts/" not in response.text
