"""Django's SessionMiddleware, answering 503 when the session store is down."""

from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware

from sessiondemo.unavailable import service_unavailable

from .exceptions import SessionStoreUnavailable


class SessionMiddleware(DjangoSessionMiddleware):
    """Turn a session store outage into a 503 page, wherever the session is touched."""

    def process_exception(self, request, exception):
        if isinstance(exception, SessionStoreUnavailable):
            return service_unavailable(request, exception)
        return None

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except SessionStoreUnavailable as e:
            # A save that did not reach Redis must not look like a success
            # (a login whose session was never stored, say).
            return service_unavailable(request, e)
