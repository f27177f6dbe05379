"""
Health checks for load balancers and orchestrators: /healthz (alive) and /readyz (ready).

Neither reads a session, counts against a throttle, sets a cookie or may be
cached. /healthz touches nothing but the process; /readyz asks the session
Redis and each database to answer, within READY_TIMEOUT_SECONDS each, and
names what did not (never a host, a URL or an error message).

HealthCheckMiddleware, first in MIDDLEWARE, answers them before anything
else runs: a probe that names the server by its address (not in
ALLOWED_HOSTS) or comes over plain HTTP still gets its answer, and no
session or throttle code is reached at all.
"""

import concurrent.futures
import logging
from inspect import iscoroutinefunction, markcoroutinefunction

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from sessiondemo.sessions.connection import get_client

READY_TIMEOUT_SECONDS = 1.0
PATHS = ("/healthz", "/readyz")
# The loggers that write one record per request: runserver's, and production servers'.
ACCESS_LOGGERS = {"django.server", "gunicorn.access", "uvicorn.access"}


class HealthCheckMiddleware:
    """Answer GET and HEAD of PATHS at once, before any other middleware."""

    # Under ASGI, any other request goes on without a thread hop.
    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.views = {"/healthz": healthz, "/readyz": readyz}
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        view = self.views.get(request.path_info)
        if view is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        if self.async_mode:
            # The probe's own work (readyz's threads) is sync: in a thread.
            return self._answer_async(view, request)
        return _answered(view(request))

    async def _answer_async(self, view, request):
        return _answered(await sync_to_async(view)(request))


def _answered(response):
    response["X-Content-Type-Options"] = "nosniff"
    return response


@never_cache
def healthz(request):
    """Answer 200 while the process serves requests."""
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
def readyz(request):
    """Answer 200 if Redis and every database answer in time, else 503 naming those that did not."""
    failed = not_ready()
    if failed:
        response = HttpResponse(f"not ready: {', '.join(failed)}\n", status=503, content_type="text/plain")
        response["Retry-After"] = "1"
        return response
    return HttpResponse("ok\n", content_type="text/plain")


def not_ready():
    """Return the names of the parts that did not answer within READY_TIMEOUT_SECONDS."""
    checks = {"redis": _redis_answers}
    for alias in connections:
        checks["database" if alias == DEFAULT_DB_ALIAS else f"database {alias}"] = _database_answers(alias)
    # Each in a thread of its own, so that one that hangs costs the others nothing.
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=len(checks))
    futures = {name: executor.submit(check) for name, check in checks.items()}
    executor.shutdown(wait=False)
    done, _ = concurrent.futures.wait(futures.values(), timeout=READY_TIMEOUT_SECONDS)
    return [name for name, future in futures.items() if future not in done or future.exception() or not future.result()]


def _redis_answers():
    return get_client().ping()


def _database_answers(alias):
    def check():
        # A connection of its own: readiness means the database takes new ones.
        connection = connections.create_connection(alias)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        finally:
            connection.close()

    return check


class QuietHealthChecks(logging.Filter):
    """Drop access-log records of health checks, which a balancer sends every few seconds."""

    def filter(self, record):
        if record.name not in ACCESS_LOGGERS:
            return True
        message = record.getMessage()
        return not any(f" {path} " in message or f" {path}?" in message for path in PATHS)
