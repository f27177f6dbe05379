"""Project-wide error views."""

import sys

from django.views import defaults

from sessiondemo.responses import service_unavailable
from sessiondemo.sessions.exceptions import SessionStoreUnavailable


def server_error(request):
    """Answer 503 for a session store outage, and the plain 500 page otherwise."""
    exception = sys.exception()
    while exception is not None and not isinstance(exception, SessionStoreUnavailable):
        exception = exception.__cause__ or exception.__context__
    if exception is not None:
        # Django's request logger has already logged this one, with its cause.
        return service_unavailable(request, exception)
    return defaults.server_error(request)
