"""Refuse requests whose text the site cannot use, before anything else reads it."""

import re

from django.core.exceptions import SuspiciousOperation
from django.utils.deprecation import MiddlewareMixin

# A lone surrogate: what a charset the client names (UTF-7, unicode_escape)
# can make Python decode, and what no UTF-8 hash, Redis key, database or page
# can hold.
SURROGATE = re.compile("[\ud800-\udfff]")


class SuspiciousRequestText(SuspiciousOperation):
    """Occurs when a request holds text that the site cannot use."""


def request_text(request):
    """Yield (where, text) for each piece of decoded text in ``request``."""
    yield "path", request.path
    yield from _fields("query string", request.GET)
    try:
        yield from _fields("form field", request.POST)
        files = request.FILES
    except OSError:
        # The client went away while sending the body; Django reads it as empty.
        return
    for name, uploads in files.lists():
        yield "file field name", name
        for upload in uploads:
            yield "file name", upload.name or ""
    for name, value in request.COOKIES.items():
        yield "cookie name", name
        yield "cookie", value


def _fields(where, query_dict):
    for name, values in query_dict.lists():
        yield f"{where} name", name
        for value in values:
            yield where, value


class RequestTextMiddleware(MiddlewareMixin):
    """
    Answer 400 (the site's page, as for any SuspiciousOperation) to a request
    whose path, query string, form fields, file names or cookies hold text that
    cannot be encoded as UTF-8.

    It reads the form body early, as CsrfViewMiddleware would: a view can no
    longer change its upload handlers.
    """

    def process_request(self, request):
        for where, text in request_text(request):
            if SURROGATE.search(text):
                # Never the text itself: it cannot be written to a log either.
                raise SuspiciousRequestText(f"A {where} that is not valid Unicode (a lone surrogate).")
