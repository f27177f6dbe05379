"""A visitor of a live server over real HTTP, keeping cookies as a browser does on localhost."""

import html
import http.client
import re
from http.cookies import SimpleCookie
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Response(NamedTuple):
    status_code: int
    headers: http.client.HTTPMessage
    body: bytes
    # Each cookie the response set or deleted, with its attributes: {name: Morsel}.
    cookies: dict

    def __getitem__(self, header):
        """Return the response's ``header``, as a Django test client's response does."""
        return self.headers[header]

    @property
    def text(self):
        return self.body.decode()

    def csrf_token(self):
        """Return the CSRF token of the page's first form."""
        return html.unescape(CSRF_FIELD.search(self.text).group(1))


class Visitor:
    """
    One browser: a cookie jar, sent back on each request, redirects not followed.

    Like Chromium and Firefox on http://localhost, it keeps and sends
    ``Secure`` cookies over plain HTTP; Python's own cookie jar would not.
    """

    def __init__(self, base_url):
        parts = urlsplit(base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.host, self.port = parts.hostname, parts.port
        self.jar = {}

    def request(self, method, path, *, body=b"", headers=None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            sent = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
            if self.jar:
                sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.jar.items())
            sent.update(headers or {})
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            result = Response(response.status, response.headers, response.read(), {})
        finally:
            connection.close()
        for header in result.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                result.cookies[name] = morsel
                if morsel["max-age"] == "0":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        return result

    def get(self, path, **headers):
        return self.request("GET", path, headers=headers)

    def post(self, path, fields):
        """Post ``fields`` as a form of the site's own page would (its Origin, a form body)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin}
        return self.request("POST", path, body=urlencode(fields).encode(), headers=headers)

    def log_in(self, username, password):
        """Post the login form as a browser would: its CSRF token read from the page; return the answer."""
        token = self.get("/accounts/login/").csrf_token()
        return self.post(
            "/accounts/login/", {"csrfmiddlewaretoken": token, "username": username, "password": password}
        )
