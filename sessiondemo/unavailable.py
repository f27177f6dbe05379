"""The 503 answer for requests that need the session store while it is down."""

import logging

from django.http import HttpResponse
from django.template import loader

logger = logging.getLogger("sessiondemo.sessions")

RETRY_AFTER_SECONDS = 30


def service_unavailable(request, exception, *, log=True):
    """Log the outage and return the site's 503 page."""
    if log:
        logger.error(
            "Session store unavailable for %s %s: %s", request.method, request.path, exception
        )
    # Rendered without the request: its context processors would read the
    # session (request.user) and fail again.
    response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
