"""Error answers rendered without the request, so that they never touch the session."""

import logging

from django.http import HttpResponse
from django.template import loader

from sessiondemo import logsafe

logger = logging.getLogger("sessiondemo.sessions")


def _render(template_name, status, retry_after):
    # No request context: its context processors would read the session.
    response = HttpResponse(loader.render_to_string(template_name), status=status)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


def too_many_requests(request, retry_after):
    """Return the site's 429 page, asking to come back in ``retry_after`` seconds."""
    return _render("429.html", 429, retry_after)


def service_unavailable(request, exception, *, log=True):
    """Log the session store outage and return the site's 503 page."""
    response = _render("503.html", 503, 30)
    if log:
        logger.error(
            "Session store unavailable for %s %s: %s",
            logsafe.text(request.method),
            logsafe.text(request.path),
            logsafe.text(exception),
        )
        # Logged once, here, with the cause: not again by django.request's "Service Unavailable".
        response._has_been_logged = True
    return response
