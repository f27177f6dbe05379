"""What the production servers' configurations (deploy/) share: how many processes, and how they log."""

import os

from django.conf import settings


def default_workers():
    """Return how many processes a server runs: WEB_CONCURRENCY if set, else one per CPU this process may use."""
    if os.environ.get("WEB_CONCURRENCY"):
        return int(os.environ["WEB_CONCURRENCY"])
    cpus = os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()
    return cpus or 1


def server_logging(*loggers):
    """
    Return a logging.config.dictConfig() dict for a server's own ``loggers``.

    Their records go through the site's console handler (LOGGING), with its
    format and its filters: control characters escaped, and no access-log line
    for a health check (sessiondemo.health.QuietHealthChecks).
    """
    site = settings.LOGGING
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": site["filters"],
        "formatters": site["formatters"],
        "handlers": {"console": site["handlers"]["console"]},
        "root": site["root"],
        "loggers": {name: {"handlers": ["console"], "level": "INFO", "propagate": False} for name in loggers},
    }
