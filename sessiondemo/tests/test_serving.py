"""
The site under its production servers, over real HTTP: gunicorn (WSGI) and uvicorn (ASGI).

Each runs as scripts/serve runs it (deploy/), in production mode (DEBUG off)
over plain HTTP on 127.0.0.1, with a redis-server of its own, a temporary
SQLite database and the static files collected into a temporary STATIC_ROOT.
"""

import gzip
import http.client
import re
import signal
import socket
import uuid
from typing import NamedTuple
from urllib.parse import urlencode

import brotli
import pytest
from django.conf import settings
from django.core.management.utils import get_random_secret_key
from playwright.sync_api import expect, sync_playwright

from sessiondemo.testing.browser import launch_chromium
from sessiondemo.testing.redis_server import RedisServer, free_port
from sessiondemo.testing.servers import SiteServer, deployment_environ
from sessiondemo.testing.visitor import Visitor
from sessiondemo.testing.web import assert_unavailable, session_keys

USERNAME = "alice"
PASSWORD = "correct horse battery staple"
SESSION_COOKIE = settings.SESSION_COOKIE_NAME
SERVERS = {"gunicorn": "wsgi", "uvicorn": "asgi"}
# What each server logs once it has begun to stop on SIGTERM.
STOPPING = {"wsgi": "Handling signal: term", "asgi": "Shutting down"}
HASHED_ADMIN_CSS = re.compile(r"/static/admin/css/base\.[0-9a-f]{12}\.css")
FOREVER = "max-age=315360000, public, immutable"


class Deployment(NamedTuple):
    directory: object
    secret_key: str
    database_url: str
    static_root: object

    def environ(self, redis):
        return deployment_environ(
            secret_key=self.secret_key,
            redis_url=redis.url,
            database_url=self.database_url,
            static_root=self.static_root,
        )


class Site(NamedTuple):
    server: SiteServer
    redis: RedisServer

    @property
    def url(self):
        return self.server.url


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    directory = tmp_path_factory.mktemp("deployment")
    return Deployment(
        directory, get_random_secret_key(), f"sqlite:///{directory / 'db.sqlite3'}", directory / "static"
    )


@pytest.fixture(scope="module")
def servers(deployment):
    """Start uvicorn with scripts/serve (which collects the static files and migrates), then gunicorn."""
    started = {}
    try:
        for name, through_serve, workers in (("uvicorn", True, 2), ("gunicorn", False, 1)):
            redis = RedisServer(deployment.directory / f"redis-{name}").start()
            server = SiteServer(
                SERVERS[name],
                port=free_port(),
                environ=deployment.environ(redis),
                log_path=deployment.directory / f"{name}.log",
                workers=workers,
                through_serve=through_serve,
            )
            started[name] = Site(server, redis)
            server.start()
        sign_up = Visitor(started["gunicorn"].url)
        token = sign_up.get("/accounts/signup/").csrf_token()
        fields = {"username": USERNAME, "email": f"{USERNAME}@example.com", "password1": PASSWORD, "password2": PASSWORD}
        assert sign_up.post("/accounts/signup/", {"csrfmiddlewaretoken": token, **fields}).status_code == 302
        yield started
    finally:
        for site in started.values():
            site.server.kill()
            site.redis.stop()


@pytest.fixture(params=list(SERVERS))
def site(request, servers):
    return servers[request.param]


@pytest.fixture(params=list(SERVERS))
def own_site(request, servers, deployment, tmp_path):
    """A server and a Redis for one test alone, which stops one of them."""
    redis = RedisServer(tmp_path / "redis").start()
    server = SiteServer(
        SERVERS[request.param],
        port=free_port(),
        environ=deployment.environ(redis),
        log_path=tmp_path / "server.log",
        workers=1,
    )
    try:
        yield Site(server.start(), redis)
    finally:
        server.kill()
        redis.stop()


def test_scripts_serve_sets_up_and_execs_the_server(servers):
    server = servers["uvicorn"].server

    # Exec'd: the process scripts/serve started is uvicorn itself, so that SIGTERM reaches it.
    assert f"Started parent process [{server.process.pid}]" in server.log()
    assert "No DJANGO_SITE_URL: serving this machine over plain HTTP" in server.log()


def test_the_admin_css_is_served_under_its_hashed_name_cached_for_good_and_compressed(site, deployment):
    visitor = Visitor(site.url)
    page = visitor.get("/admin/login/")
    assert page.status_code == 200
    [path] = set(HASHED_ADMIN_CSS.findall(page.text))
    collected = (deployment.static_root / path.removeprefix("/static/")).read_bytes()

    for accepted, encoding, decode in (
        ("br, gzip", "br", brotli.decompress),
        ("gzip", "gzip", gzip.decompress),
        ("identity", None, bytes),
    ):
        response = visitor.get(path, **{"Accept-Encoding": accepted})

        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/css")
        assert response.headers["Cache-Control"] == FOREVER
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["Content-Encoding"] == encoding
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert decode(response.body) == collected
        assert not response.cookies


def test_log_in_see_the_profile_and_log_out(site):
    visitor = Visitor(site.url)
    page = visitor.get("/accounts/login/")
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert settings.CSRF_COOKIE_NAME.startswith("__Host-")
    assert (csrf["secure"], csrf["path"], csrf["domain"], csrf["samesite"]) == (True, "/", "", "Lax")

    response = visitor.log_in(USERNAME, PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/profile/"
    cookie = response.cookies[SESSION_COOKIE]
    assert SESSION_COOKIE.startswith("__Host-")
    assert (cookie["secure"], cookie["httponly"], cookie["samesite"]) == (True, True, "Lax")
    assert (cookie["path"], cookie["domain"], cookie["max-age"], cookie["expires"]) == ("/", "", "", "")
    assert len(session_keys(site.redis.client())) == 1

    profile = visitor.get("/profile/")
    assert profile.status_code == 200
    assert f"Signed in as <strong>{USERNAME}</strong>" in profile.text

    logout = visitor.post("/accounts/logout/", {"csrfmiddlewaretoken": profile.csrf_token()})

    assert logout.status_code == 302
    assert logout.headers["Location"] == "/accounts/login/"
    ended = logout.cookies[SESSION_COOKIE]
    assert (ended["max-age"], ended["secure"], ended["path"]) == ("0", True, "/")
    assert session_keys(site.redis.client()) == []
    again = visitor.get("/profile/")
    assert again.status_code == 302
    assert again.headers["Location"] == "/accounts/login/?next=/profile/"


def test_over_plain_http_no_forwarded_header_makes_a_request_secure(site):
    # gunicorn and uvicorn would each take X-Forwarded-Proto from a local peer
    # at its word; here only Django's settings decide (DJANGO_SECURE_PROXY_SSL_HEADER).
    response = Visitor(site.url).get("/accounts/login/", **{"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"})

    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers


def test_behind_a_tls_proxy_plain_http_is_redirected_and_https_gets_hsts(servers, deployment, tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    environ = {
        **deployment.environ(redis),
        "DJANGO_SITE_URL": "https://localhost",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    }
    server = SiteServer("wsgi", port=free_port(), environ=environ, log_path=tmp_path / "server.log", workers=1)
    try:
        server.start()
        visitor = Visitor(server.url)
        plain = visitor.get("/accounts/login/", Host="localhost")
        page = visitor.get("/accounts/login/", Host="localhost", **{"X-Forwarded-Proto": "https"})
    finally:
        server.kill()
        redis.stop()

    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://localhost/accounts/login/"
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert page.cookies[settings.CSRF_COOKIE_NAME]["secure"]


def test_health_checks_answer_and_stay_out_of_the_access_log(site):
    marker = f"/accounts/login/?after-the-health-checks={uuid.uuid4().hex}"
    # One connection, so that one worker answers the three in this order and logs each before the next.
    connection = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=30)
    answers = []
    for path in ("/healthz", "/readyz", marker):
        connection.request("GET", path)
        response = connection.getresponse()
        answers.append((response.status, response.read()))
    connection.close()

    assert answers[:2] == [(200, b"ok\n"), (200, b"ok\n")]
    assert answers[2][0] == 200
    site.server.wait_for_log(marker)
    log = site.server.log()
    assert "/healthz" not in log
    assert "/readyz" not in log


def test_a_redis_outage_is_the_503_page_not_a_500(own_site):
    visitor = Visitor(own_site.url)
    assert visitor.log_in(USERNAME, PASSWORD).status_code == 302

    own_site.redis.stop()

    assert_unavailable(visitor.get("/profile/"))
    assert_unavailable(Visitor(own_site.url).log_in(USERNAME, PASSWORD))
    assert visitor.get("/readyz").body == b"not ready: redis\n"


def read_head(sock):
    """Read one response head (status line and headers) from ``sock``, and nothing after it."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"the server closed the connection after {head!r}"
        head += byte
    return head


def test_sigterm_lets_a_login_in_flight_finish_then_the_server_exits_0(own_site):
    server = own_site.server
    stopping = STOPPING[server.interface]
    visitor = Visitor(server.url)
    token = visitor.get("/accounts/login/").csrf_token()
    body = urlencode({"csrfmiddlewaretoken": token, "username": USERNAME, "password": PASSWORD}).encode()
    cookies = "; ".join(f"{name}={value}" for name, value in visitor.jar.items())
    head = (
        f"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nOrigin: {visitor.origin}\r\n"
        f"Cookie: {cookies}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head.encode())
        # The server says "100 Continue" once the application asks for the body: the request is in flight.
        assert read_head(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log(stopping)
        sock.sendall(body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = (response.status, response.getheader("Location"))

    assert answer == (302, "/profile/")
    assert server.process.wait(timeout=60) == 0
    log = server.log()
    assert log.index(stopping) < log.index('"POST /accounts/login/ HTTP/1.1" 302')


@pytest.mark.browser
def test_chromium_logs_in_sees_the_profile_and_logs_out_under_uvicorn(servers):
    # Chromium takes localhost for a secure context: Secure and __Host- cookies work there over HTTP.
    url = servers["uvicorn"].url.replace("127.0.0.1", "localhost")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context(base_url=url).new_page()
            with page.expect_response(re.compile(r"/static/css/site\.[0-9a-f]{12}\.css$")) as stylesheet:
                page.goto("/accounts/login/")
            assert stylesheet.value.status == 200
            assert stylesheet.value.headers["content-encoding"] == "br"
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            expect(page).to_have_url(f"{url}/profile/")
            expect(page.get_by_role("navigation")).to_contain_text(f"Signed in as {USERNAME}")
            [cookie] = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
            assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Lax")

            page.get_by_role("button", name="Log out").click()

            expect(page).to_have_url(f"{url}/accounts/login/")
            assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
        finally:
            browser.close()
