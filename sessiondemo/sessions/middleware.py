"""
Django's SessionMiddleware, plus outage handling, id renewal and a guard on guessed ids.

What it needs from the site comes through settings (conf.py), each with a plain
default: who the client is (SESSION_REDIS_CLIENT_ADDRESS, else REMOTE_ADDR),
and the 503 and 429 answers (SESSION_REDIS_UNAVAILABLE_RESPONSE,
SESSION_REDIS_TOO_MANY_RESPONSE, else plain text).
"""

import functools
import logging
import re

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import (
    SessionMiddleware as DjangoSessionMiddleware,
)
from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

from . import conf, protocol, scripts
from .backend import SessionStore as RedisSessionStore
from .exceptions import SessionStoreUnavailable
from .keys import is_well_formed

logger = logging.getLogger("sessiondemo.sessions")
security_logger = logging.getLogger("django.security.sessiondemo.sessions")

# The longest User-Agent worth storing or comparing: record_client() is given
# it cut to this, and a request's is compared cut the same way.
USER_AGENT_MAX_LENGTH = 512
# Unknown ids are counted per client in windows of this many seconds.
UNKNOWN_IDS_WINDOW = 60

# KEYS[1] the client's count of unknown ids. ARGV: window (s), limit. Count one
# more; the first starts the window, reaching the limit starts it again.
# Returns {count, ttl}.
COUNT_UNKNOWN_ID = scripts.register("""#!lua
local count = redis.call('INCR', KEYS[1])
if count == 1 or count == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('TTL', KEYS[1])}
""")

# What can end a log line, make it display other than it reads (bidirectional
# overrides and isolates), or fail to encode (lone surrogates).
UNSAFE_IN_LOGS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def log_text(value):
    """Return ``value`` as one line of log text that reads back unambiguously (backslashes doubled)."""

    def escaped(match):
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return UNSAFE_IN_LOGS.sub(escaped, str(value).replace("\\", "\\\\"))


def client_user_agent(request):
    """Return the request's User-Agent as sessions record and compare it: cut to USER_AGENT_MAX_LENGTH."""
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX_LENGTH]


# -- The defaults of the settings that name callables (conf.py) ------------------------


def remote_addr(request):
    """Return the TCP peer's address: the default SESSION_REDIS_CLIENT_ADDRESS."""
    return request.META.get("REMOTE_ADDR", "")


def plain_unavailable(request, exception):
    """Return a plain-text 503: the default SESSION_REDIS_UNAVAILABLE_RESPONSE."""
    return _plain("Service temporarily unavailable. Please try again in a minute.", 503, 30)


def plain_too_many(request, retry_after):
    """Return a plain-text 429: the default SESSION_REDIS_TOO_MANY_RESPONSE."""
    return _plain("Too many requests. Please wait a while and try again.", 429, retry_after)


def _plain(text, status, retry_after):
    # No template and no request context: context processors would read the session.
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


# -- Answers -------------------------------------------------------------------------


def unavailable(request, exception):
    """Log the session store outage and return the configured 503."""
    logger.error(
        "Session store unavailable for %s %s: %s",
        log_text(request.method),
        log_text(request.path),
        log_text(exception),
    )
    response = conf.unavailable_response()(request, exception)
    # Logged once, here, with the cause: not again by django.request's "Service Unavailable".
    response._has_been_logged = True
    return response


def too_many(request, retry_after):
    """Return the configured 429, asking to come back in ``retry_after`` seconds."""
    return conf.too_many_response()(request, retry_after)


class TooManyUnknownIds(Exception):
    """Occurs when one client sends more unknown session ids than a minute allows."""

    def __init__(self, retry_after):
        super().__init__(f"Too many unknown session ids; retry after {retry_after} s.")
        self.retry_after = retry_after


def count_unknown_id(request):
    """Count a session id this server never issued; raise TooManyUnknownIds past the limit (an operation)."""
    client = conf.client_address()(request)
    limit = conf.unknown_ids_per_minute()
    key = f"{conf.key_prefix()}t:unknown-ids:{client}"
    [(count, ttl)] = yield [scripts.Eval(COUNT_UNKNOWN_ID, [key], [UNKNOWN_IDS_WINDOW, limit])]
    if count == limit:
        security_logger.warning(
            "Unknown session ids from one client: ip=%s count=%d in 60 s; answering 429.",
            log_text(client),
            count,
        )
    if count >= limit:
        raise TooManyUnknownIds(max(ttl, 1))


class SessionMiddleware(DjangoSessionMiddleware):
    """
    Django's session middleware, with these additions.

    A session store outage becomes a 503 page wherever the session is touched;
    a client that keeps sending session ids this server never issued gets 429
    (an id it issued that has ended since is only a stale cookie: the response
    deletes it); a session whose id is older than SESSION_REDIS_RENEW_AFTER
    moves to a new id; and a response that read or wrote the session is never
    stored by a cache. With one of Django's engines as SESSION_ENGINE, the
    cookie goes to it as it is and no id is counted.

    Under ASGI it reads and writes the session on the event loop's Redis
    client (protocol.py), never in a thread, unless SESSION_REDIS_NATIVE_ASYNC
    is False or the engine is not this one.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        # With another SESSION_ENGINE (one of Django's), its ids are its own business.
        self.ours = issubclass(self.SessionStore, RedisSessionStore)

    def process_request(self, request):
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not self.ours:
            request.session = self.SessionStore(session_key)
            return
        # A cookie that is not even shaped like an id is no cookie at all (and
        # the response deletes it); checking more than its shape is the store's job.
        request.session = self.SessionStore(session_key if is_well_formed(session_key) else None)
        request.session.on_unknown_id = functools.partial(count_unknown_id, request)

    def process_exception(self, request, exception):
        if isinstance(exception, SessionStoreUnavailable):
            return unavailable(request, exception)
        if isinstance(exception, TooManyUnknownIds):
            return too_many(request, exception.retry_after)
        return None

    async def __acall__(self, request):
        if not self.ours or not conf.native_async():
            return await super().__acall__(request)
        # process_request() only makes the store: no I/O, no thread needed.
        self.process_request(request)
        response = await self.get_response(request)
        return await protocol.arun(self._respond(request, response))

    def process_response(self, request, response):
        if not self.ours:
            return super().process_response(request, response)
        return protocol.run(self._respond(request, response))

    def _respond(self, request, response):
        """Finish ``response`` as process_response() does: an operation of the session protocol."""
        session = getattr(request, "session", None)
        try:
            if session is not None and response.status_code < 500 and self.renewal_due(session):
                session.renew()
            if session is not None and self.must_save(session, response):
                # Saved here, on this request's transport; Django's
                # process_response() then finds nothing left to write.
                try:
                    yield from session._save()
                except UpdateError:
                    raise SessionInterrupted(
                        "The request's session was deleted before the request completed. "
                        "The user may have logged out in a concurrent request, for example."
                    ) from None
                session.saved_ahead = True
            response = super().process_response(request, response)
            if session is not None:
                yield from session._run_pending_calls()
        except SessionStoreUnavailable as e:
            # A save that did not reach Redis must not look like a success
            # (a login whose session was never stored, say).
            return unavailable(request, e)
        except TooManyUnknownIds as e:
            return too_many(request, e.retry_after)
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
                log_text(conf.client_address()(request)),
            )

    @staticmethod
    def must_save(session, response):
        """Return True if Django's process_response() would save ``session`` with ``response``."""
        if response.status_code >= 500 or session.is_empty():
            return False
        return session.modified or settings.SESSION_SAVE_EVERY_REQUEST

    @staticmethod
    def renewal_due(session):
        return session.accessed and hasattr(session, "renewal_due") and session.renewal_due()
