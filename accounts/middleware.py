"""
Django's AuthenticationMiddleware, reporting sessions that name a user they cannot prove,
and telling code with no request at hand (signals) which session the request runs in; and
login throttling's answers.
"""

import functools
import logging
from contextvars import ContextVar

from django.contrib.auth import SESSION_KEY, aget_user, get_user
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.utils.functional import SimpleLazyObject

from sessiondemo.middleware import InlineMiddlewareMixin
from sessiondemo.responses import too_many_requests

from . import devices
from .throttling import LoginThrottled

security_logger = logging.getLogger("django.security.sessiondemo.auth")

_request_session = ContextVar("accounts_request_session", default=None)


def request_session():
    """Return the session of the request being served here (thread or task), or None."""
    return _request_session.get()


def get_user_reporting_refusals(request):
    """Return the request's user; log when its session names a user that is refused."""
    if hasattr(request, "_acached_user"):
        # An async view asked request.auser() first.
        return request._acached_user
    claimed = request.session.get(SESSION_KEY)
    user = get_user(request)
    _report_refusal(claimed, user)
    return user


async def auser_reporting_refusals(request):
    """Return the request's user as request.auser() does, reporting as get_user_reporting_refusals()."""
    if not hasattr(request, "_acached_user"):
        claimed = await request.session.aget(SESSION_KEY)
        request._acached_user = await aget_user(request)
        _report_refusal(claimed, request._acached_user)
    return request._acached_user


def _report_refusal(claimed, user):
    if claimed is not None and not user.is_authenticated:
        # Django flushed it: a password hash that does not match (forged data, or
        # a password changed behind the site's back), or a user gone or inactive.
        security_logger.warning(
            "Session refused: it names user %s, whom it cannot authenticate.", claimed
        )


class AuthenticationMiddleware(InlineMiddlewareMixin, DjangoAuthenticationMiddleware):
    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: get_user_reporting_refusals(request))
        request.auser = functools.partial(auser_reporting_refusals, request)
        _request_session.set(request.session)

    def process_response(self, request, response):
        # Not reset(): under ASGI the response may be processed in another context.
        _request_session.set(None)
        return response


class LoginThrottleMiddleware(InlineMiddlewareMixin):
    """Answer a throttled password check with 429; give a browser that logged in its device cookie."""

    def process_response(self, request, response):
        devices.set_cookie(request, response)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, LoginThrottled):
            return too_many_requests(request, exception.retry_after)
        return None
