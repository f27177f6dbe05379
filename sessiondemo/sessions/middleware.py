"""Django's SessionMiddleware, answering 503 when the session store is down."""

from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.utils.cache import add_never_cache_headers

from sessiondemo.unavailable import service_unavailable

from .exceptions import SessionStoreUnavailable


class SessionMiddleware(DjangoSessionMiddleware):
    """
    Django's session middleware, plus two guarantees.

    A session store outage becomes a 503 page wherever the session is touched,
    and a response that read or wrote the session is never stored by a cache.
    """

    def process_exception(self, request, exception):
        if isinstance(exception, SessionStoreUnavailable):
            return service_unavailable(request, exception)
        return None

    def process_response(self, request, response):
        try:
            response = super().process_response(request, response)
        except SessionStoreUnavailable as e:
            # A save that did not reach Redis must not look like a success
            # (a login whose session was never stored, say).
            return service_unavailable(request, e)
        session = getattr(request, "session", None)
        if session is not None and (session.accessed or session.modified):
            add_never_cache_headers(response)
        return response
