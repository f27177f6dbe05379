"""The 503 answer for requests that need the session store while it is down."""

import logging

from sessiondemo.responses import service_unavailable as unavailable_page

logger = logging.getLogger("sessiondemo.sessions")


def service_unavailable(request, exception, *, log=True):
    """Log the outage and return the site's 503 page."""
    if log:
        logger.error(
            "Session store unavailable for %s %s: %s", request.method, request.path, exception
        )
    return unavailable_page(request)
