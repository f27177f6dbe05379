"""Point the site's session store at another Redis, for tests and benchmarks."""

import contextlib

from django.conf import settings
from django.core.cache import caches


def point_sessions_at(url):
    """Make the session engine use the Redis at ``url`` from now on."""
    settings.CACHES[settings.SESSION_CACHE_ALIAS]["LOCATION"] = url
    caches.__dict__.pop("settings", None)
    caches.close_all()
    with contextlib.suppress(AttributeError):
        delattr(caches._connections, settings.SESSION_CACHE_ALIAS)


@contextlib.contextmanager
def sessions_at(url):
    """Use the Redis at ``url`` for sessions inside the block."""
    previous = settings.CACHES[settings.SESSION_CACHE_ALIAS]["LOCATION"]
    point_sessions_at(url)
    try:
        yield
    finally:
        point_sessions_at(previous)
