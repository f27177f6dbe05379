"""Django's WSGI and ASGI handlers, with requests that no Content-Type header can break."""

import django
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.handlers import asgi, wsgi


class UnreadableContentTypeKept:
    """
    Keep a Content-Type that Django cannot read, for RequestTextMiddleware to refuse.

    Django reads it while it builds the request, before any middleware or error
    page exists, so what it raises there reaches the server as a bare 500: a
    header it cannot parse (BadRequest), or a charset it then decodes the
    query string with and cannot: "base64" is no text encoding (LookupError),
    "undefined" decodes nothing (UnicodeError), "idna" turns the query string
    into other fields (TooManyFieldsSent).
    """

    content_type_error = None

    def _set_content_type_params(self, meta):
        try:
            super()._set_content_type_params(meta)
        except (BadRequest, SuspiciousOperation, LookupError, ValueError) as e:
            # Read as no body at all, in UTF-8, until the middleware refuses it.
            self.content_type, self.content_params, self._encoding = "", {}, None
            self.content_type_error = e


class WSGIRequest(UnreadableContentTypeKept, wsgi.WSGIRequest):
    pass


class ASGIRequest(UnreadableContentTypeKept, asgi.ASGIRequest):
    pass


class WSGIHandler(wsgi.WSGIHandler):
    request_class = WSGIRequest


class ASGIHandler(asgi.ASGIHandler):
    request_class = ASGIRequest


def get_wsgi_application():
    """Set Django up and return the site's WSGI callable (as Django's function of that name)."""
    django.setup(set_prefix=False)
    return WSGIHandler()


def get_asgi_application():
    """Set Django up and return the site's ASGI callable (as Django's function of that name)."""
    django.setup(set_prefix=False)
    return ASGIHandler()
