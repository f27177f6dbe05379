"""
Error answers rendered without the request, so that they never touch the session.

The session engine answers with these (SESSION_REDIS_TOO_MANY_RESPONSE,
SESSION_REDIS_UNAVAILABLE_RESPONSE in settings), and so does the site.
"""

from django.http import HttpResponse
from django.template import loader


def _render(template_name, status, retry_after):
    # No request context: its context processors would read the session.
    response = HttpResponse(loader.render_to_string(template_name), status=status)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


def too_many_requests(request, retry_after):
    """Return the site's 429 page, asking to come back in ``retry_after`` seconds."""
    return _render("429.html", 429, retry_after)


def service_unavailable(request, exception):
    """Return the site's 503 page for a session store outage (whoever caught it logs it)."""
    return _render("503.html", 503, 30)
