"""
The site's middleware that runs on the event loop under ASGI, and the one
that refuses requests whose text the site cannot use before anything else reads it.
"""

import re

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.messages.middleware import (
    MessageMiddleware as DjangoMessageMiddleware,
)
from django.core.exceptions import SuspiciousOperation
from django.middleware.clickjacking import (
    XFrameOptionsMiddleware as DjangoXFrameOptionsMiddleware,
)
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.csp import (
    ContentSecurityPolicyMiddleware as DjangoContentSecurityPolicyMiddleware,
)
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.utils.deprecation import MiddlewareMixin


class InlineMiddlewareMixin(MiddlewareMixin):
    """
    MiddlewareMixin for hooks that do no I/O: under ASGI they run on the event loop.

    Django runs every hook of a MiddlewareMixin through sync_to_async() under
    ASGI, a thread hop each to look at a header; a hook here must not block
    (no database, no sync Redis). With SESSION_REDIS_NATIVE_ASYNC = False they
    hop as Django's do: the whole stack as Django ships it, to measure against.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        if self.async_mode:
            # The handler adapts these after __init__: a coroutine function stays on the loop.
            for name in ("process_view", "process_exception", "process_template_response"):
                if (hook := getattr(self, name, None)) is not None:
                    setattr(self, name, _on_the_loop(hook))

    async def __acall__(self, request):
        if not native_async():
            return await super().__acall__(request)
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


def _on_the_loop(hook):
    async def run(*args, **kwargs):
        if not native_async():
            return await sync_to_async(hook, thread_sensitive=True)(*args, **kwargs)
        return hook(*args, **kwargs)

    return run


def native_async():
    """Return whether the site's async path is on: the engine's SESSION_REDIS_NATIVE_ASYNC."""
    return getattr(settings, "SESSION_REDIS_NATIVE_ASYNC", True)


# Django's own, whose hooks only read and write headers, cookies and the
# parsed request (the site's messages travel in a cookie, CSRF tokens too,
# and a CSRF failure's page reads no user). Django's checks look for four of
# them by their own paths: checks.check_django_middleware() runs those on these.


class SecurityMiddleware(InlineMiddlewareMixin, DjangoSecurityMiddleware):
    """Django's SecurityMiddleware, on the event loop under ASGI."""


class XFrameOptionsMiddleware(InlineMiddlewareMixin, DjangoXFrameOptionsMiddleware):
    """Django's XFrameOptionsMiddleware, on the event loop under ASGI."""


class CsrfViewMiddleware(InlineMiddlewareMixin, DjangoCsrfViewMiddleware):
    """Django's CsrfViewMiddleware, on the event loop under ASGI (CSRF_USE_SESSIONS is off)."""



class ContentSecurityPolicyMiddleware(InlineMiddlewareMixin, DjangoContentSecurityPolicyMiddleware):
    """Django's ContentSecurityPolicyMiddleware, on the event loop under ASGI."""


class CommonMiddleware(InlineMiddlewareMixin, DjangoCommonMiddleware):
    """Django's CommonMiddleware, on the event loop under ASGI."""


class MessageMiddleware(InlineMiddlewareMixin, DjangoMessageMiddleware):
    """Django's MessageMiddleware, on the event loop under ASGI (MESSAGE_STORAGE is a cookie)."""


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
    for name, value in request.COOKIES.items():
        yield "cookie name", name
        yield "cookie", value
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


def _fields(where, query_dict):
    for name, values in query_dict.lists():
        yield f"{where} name", name
        for value in values:
            yield where, value


def is_text_encoding(name):
    """Return whether Django can decode form data with the codec ``name`` ("base64", "idna" it cannot)."""
    try:
        # As Django decodes; and not b"": Python decodes nothing without looking at the codec.
        b"-".decode(name, "replace")
    except (LookupError, ValueError):
        return False
    return True


class RequestTextMiddleware(InlineMiddlewareMixin):
    """
    Answer 400 (the site's page, as for any SuspiciousOperation) to a request
    whose Content-Type cannot be read (see sessiondemo.handlers) or names a
    charset that is no text encoding, or whose path, query string, form
    fields, file names or cookies hold text that cannot be encoded as UTF-8,
    or whose query string holds a NUL: query strings reach database lookups
    without a form (the admin's filters, search and autocomplete), and
    PostgreSQL cannot store NUL in text. Forms refuse NUL themselves.

    It reads the form body early, as CsrfViewMiddleware would: a view can no
    longer change its upload handlers.
    """

    def process_request(self, request):
        if error := getattr(request, "content_type_error", None):
            raise SuspiciousRequestText("A Content-Type header that cannot be read.") from error
        if request.encoding and not is_text_encoding(request.encoding):
            raise SuspiciousRequestText("A Content-Type charset that is no text encoding.")
        for where, text in _fields("query string", request.GET):
            if "\x00" in text:
                raise SuspiciousRequestText(f"A {where} with a NUL character.")
        for where, text in request_text(request):
            if SURROGATE.search(text):
                # Never the text itself: it cannot be written to a log either.
                raise SuspiciousRequestText(f"A {where} that is not valid Unicode (a lone surrogate).")
