"""
Requests through the site's WSGI handler, in this process, as a WSGI server would send them.

No test client: each request is a WSGI environ handed to the site's own
handler (sessiondemo.handlers.WSGIHandler), its body read and closed (which
sends request_finished, as a server does), over HTTPS as in production.
"""

import io
import re
import sys
from http.cookies import SimpleCookie
from typing import NamedTuple
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.core.signals import got_request_exception
from django.db import transaction

from . import workload

HOST = "localhost"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')

# The last exception a request raised inside the site, for the error message.
_raised = []


def _note_exception(sender, request=None, **kwargs):
    _raised[:] = [sys.exc_info()[1]]


got_request_exception.connect(_note_exception, dispatch_uid="bench.web.note_exception")


class Response(NamedTuple):
    status: int
    body: bytes


class RequestFailed(Exception):
    """Occurs when the site answers a benchmark request with another status than expected."""


class Browser:
    """One visitor: its cookies, and the requests it sends through ``handler``."""

    def __init__(self, handler, ip="198.18.0.1"):
        self.handler = handler
        self.ip = ip
        self.cookies = {}

    @property
    def session_key(self):
        return self.cookies.get(settings.SESSION_COOKIE_NAME)

    def get(self, path, query=None, expect=200):
        """Send a GET; return the Response, or raise RequestFailed unless it is ``expect``."""
        return self.send("GET", path, query=urlencode(query or {}), expect=expect)

    def post(self, path, form, expect):
        """Post a form; return the Response, or raise RequestFailed unless it is ``expect``."""
        return self.send("POST", path, body=urlencode(form).encode(), expect=expect)

    def send(self, method, path, *, query="", body=b"", expect):
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": HOST,
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.ip,
            "HTTP_HOST": HOST,
            "HTTP_USER_AGENT": USER_AGENT,
            "HTTP_COOKIE": "; ".join(f"{name}={value}" for name, value in self.cookies.items()),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["HTTP_ORIGIN"] = f"https://{HOST}"
        started = []

        def start_response(status, headers, exc_info=None):
            started.append((int(status.split()[0]), headers))

        _raised.clear()
        response = self.handler(environ, start_response)
        try:
            content = b"".join(response)
        finally:
            response.close()
        status, headers = started[0]
        self.keep_cookies(headers)
        if status != expect:
            cause = f": {_raised[0].__class__.__name__}: {_raised[0]}" if _raised else ""
            raise RequestFailed(f"{method} {path} answered {status}, not {expect}{cause}")
        return Response(status, content)

    def keep_cookies(self, headers):
        """Keep the cookies the response set, and drop those it deleted, as a browser does."""
        for name, value in headers:
            if name.lower() != "set-cookie":
                continue
            for morsel in SimpleCookie(value).values():
                if morsel["max-age"] == "0":
                    self.cookies.pop(morsel.key, None)
                else:
                    self.cookies[morsel.key] = morsel.value


def make_users(count):
    """Create the accounts user0 … user<count - 1>, all with PASSWORD; return them."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    with transaction.atomic():
        return [model.objects.create_user(f"user{n}", password=PASSWORD) for n in range(count)]


def logged_in_session(store, user):
    """Store the session of ``user`` logged in with the site's backend; return its key."""
    session = store()
    session.update(workload.payload(user.pk))
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


def logged_in_browser(handler, store, user):
    """Return a Browser that carries the cookie of a new session of ``user``."""
    browser = Browser(handler)
    browser.cookies[settings.SESSION_COOKIE_NAME] = logged_in_session(store, user)
    return browser


def login_form(handler, user):
    """Return a new Browser that fetched the login page, and the form it would post as ``user``."""
    browser = Browser(handler)
    page = browser.get("/accounts/login/")
    token = CSRF_FIELD.search(page.body).group(1).decode()
    return browser, {"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": token}
