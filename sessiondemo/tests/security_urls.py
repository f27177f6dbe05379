"""
The site's URLs plus test-only views for the security tests (SEC-xx rows).

Use with ``pytest.mark.urls("sessiondemo.tests.security_urls")``. Also lists
the site's own GET URLs (``site_get_urls``) for tests that crawl every page.
"""

from django.http import HttpResponse
from django.template import engines
from django.urls import URLPattern, URLResolver, path, reverse

from sessiondemo.tests.urls import urlpatterns as test_urlpatterns

# What a crash's message may carry that must never reach a visitor (SEC-39).
SECRET_DETAIL = "REDIS_URL=redis://127.0.0.1:6379/0 SECRET_KEY DATABASES boom-detail-7f3a"


def boom(request):
    """Crash, as a bug would, with internals in the exception message."""
    raise RuntimeError(SECRET_DETAIL)


NONCE_PAGE = engines["django"].from_string(
    "<!doctype html><title>nonce</title><script {% csp_nonce_attr %}>/* inline */</script>"
)


def nonce_page(request):
    """A page with an inline script that carries the request's CSP nonce."""
    return HttpResponse(NONCE_PAGE.render({}, request))


urlpatterns = [
    *test_urlpatterns,
    path("test/boom/", boom),
    path("test/nonce/", nonce_page),
]

# The site's error views, as in sessiondemo.urls.
handler500 = "sessiondemo.views.server_error"


# -- Crawling the site ---------------------------------------------------------

# A sample value for each URL parameter name the site uses. A new parameter
# name makes site_get_urls() fail, so that the crawls below are kept complete.
SAMPLE_KWARGS = {
    "uidb64": "MQ",
    "token": "set-password",
    "handle": "0" * 16,
}


def _patterns(resolver, namespace=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin" or pattern.app_name == "admin":
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _patterns(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield namespace + pattern.name, pattern


def site_get_urls():
    """Return ``{url name: sample path}`` for every named route of the site outside the admin."""
    from django.urls import get_resolver

    urls = {}
    for name, pattern in _patterns(get_resolver("sessiondemo.urls")):
        params = set(pattern.pattern.regex.groupindex)
        unknown = params - set(SAMPLE_KWARGS)
        assert not unknown, f"add sample values for {unknown} ({name}) to SAMPLE_KWARGS"
        kwargs = {p: SAMPLE_KWARGS[p] for p in params}
        urls[name] = reverse(name, urlconf="sessiondemo.urls", kwargs=kwargs or None)
    return urls
