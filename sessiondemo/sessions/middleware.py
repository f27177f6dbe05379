"""Django's SessionMiddleware, plus outage handling, id renewal and a guard on guessed ids."""

import functools
import logging

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.middleware import (
    SessionMiddleware as DjangoSessionMiddleware,
)
from django.utils.cache import add_never_cache_headers

from sessiondemo import logsafe, throttle
from sessiondemo.clients import client_ip, client_network, client_user_agent
from sessiondemo.responses import service_unavailable, too_many_requests

from . import conf
from .exceptions import SessionStoreUnavailable
from .keys import is_well_formed

security_logger = logging.getLogger("django.security.sessiondemo.sessions")


class TooManyUnknownIds(Exception):
    """Occurs when one client sends more unknown session ids than a minute allows."""

    def __init__(self, retry_after):
        super().__init__(f"Too many unknown session ids; retry after {retry_after} s.")
        self.retry_after = retry_after


def count_unknown_id(request):
    """Count a session id this server never issued; raise TooManyUnknownIds past the limit."""
    ip = client_network(request)
    counter = throttle.Counter(
        f"unknown-ids:{ip}", limit=conf.unknown_ids_per_minute(), window=60
    )
    [(count, ttl)] = throttle.hit(counter)
    if count == counter.limit:
        security_logger.warning(
            "Unknown session ids from one client: ip=%s count=%d in 60 s; answering 429.",
            logsafe.text(ip),
            count,
        )
    if count >= counter.limit:
        raise TooManyUnknownIds(max(ttl, 1))


class SessionMiddleware(DjangoSessionMiddleware):
    """
    Django's session middleware, with these additions.

    A session store outage becomes a 503 page wherever the session is touched;
    a client that keeps sending session ids this server never issued gets 429
    (an id it issued that has ended since is only a stale cookie: the response
    deletes it); a session whose id is older than SESSION_REDIS_RENEW_AFTER
    moves to a new id; and a response that read or wrote the session is never
    stored by a cache.
    """

    def process_request(self, request):
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        # A cookie that is not even shaped like an id is no cookie at all (and
        # the response deletes it); checking more than its shape is the store's job.
        request.session = self.SessionStore(session_key if is_well_formed(session_key) else None)
        request.session.on_unknown_id = functools.partial(count_unknown_id, request)

    def process_exception(self, request, exception):
        if isinstance(exception, SessionStoreUnavailable):
            return service_unavailable(request, exception)
        if isinstance(exception, TooManyUnknownIds):
            return too_many_requests(request, exception.retry_after)
        return None

    def process_response(self, request, response):
        session = getattr(request, "session", None)
        try:
            if session is not None and response.status_code < 500 and self.renewal_due(session):
                session.renew()
            response = super().process_response(request, response)
            if session is not None and hasattr(session, "run_pending_calls"):
                session.run_pending_calls()
        except SessionStoreUnavailable as e:
            # A save that did not reach Redis must not look like a success
            # (a login whose session was never stored, say).
            return service_unavailable(request, e)
        except TooManyUnknownIds as e:
            return too_many_requests(request, e.retry_after)
        if session is not None and (session.accessed or session.modified):
            add_never_cache_headers(response)
            self.note_user_agent_change(request, session)
        deletion = response.cookies.get(settings.SESSION_COOKIE_NAME)
        if deletion is not None and deletion["max-age"] == 0:
            # Django deletes without HttpOnly; every session cookie carries it.
            deletion["httponly"] = True
        return response

    @staticmethod
    def note_user_agent_change(request, session):
        """Log a logged-in session used from another User-Agent than it logged in with."""
        recorded = getattr(session, "user_agent", None)
        current = client_user_agent(request)
        if recorded is not None and recorded != current and session.get(SESSION_KEY):
            # For detection only: User-Agents change with browser updates.
            security_logger.warning(
                "Session used from another User-Agent than at login: user=%s session=%s ip=%s",
                session.get(SESSION_KEY),
                session.handle,
                logsafe.text(client_ip(request)),
            )

    @staticmethod
    def renewal_due(session):
        return session.accessed and hasattr(session, "renewal_due") and session.renewal_due()
