"""The site's own address: what links it sends out point at, whatever Host a request named."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def configured_site_url():
    """Return SITE_URL as configured, "" if it is not."""
    return getattr(settings, "SITE_URL", "")


def site_url():
    """Return SITE_URL, the site's origin (``https://host[:port]``), without a trailing slash."""
    url = configured_site_url()
    if not url:
        raise ImproperlyConfigured(
            "SITE_URL is not set: set DJANGO_SITE_URL to the site's address, "
            "e.g. https://sessions.example.com."
        )
    return url.rstrip("/")


def absolute_url(path):
    """Return the absolute URL of ``path`` (which starts with a slash) on this site."""
    return site_url() + path
