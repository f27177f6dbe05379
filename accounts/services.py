"""Account actions: ending sessions, asking for the password again, and password reset mail."""

import time

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.http import Http404
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from sessiondemo.sessions import events
from sessiondemo.site import absolute_url

from . import engine, ratelimits, selectors, tasks

# Where a session keeps the time its user last proved their password.
AUTHENTICATED_AT_KEY = "_accounts_authenticated_at"


def session_authenticated(*, session) -> None:
    """Note in ``session`` that its user has just proved their password."""
    session[AUTHENTICATED_AT_KEY] = int(time.time())


def session_reauthenticated(*, session) -> None:
    """Note a fresh password check, under a new session id as for any privilege change."""
    session.cycle_key()
    session_authenticated(session=session)


def reauthentication_due(*, session) -> bool:
    """Return True if ``session``'s last password check is too old for a sensitive action."""
    max_age = getattr(settings, "ACCOUNTS_REAUTHENTICATE_AFTER", 600)
    authenticated_at = session.get(AUTHENTICATED_AT_KEY)
    return not isinstance(authenticated_at, int) or time.time() - authenticated_at > max_age


def session_end(*, user, handle, current, reason=events.ENDED_BY_USER) -> None:
    """End ``user``'s session named ``handle``; raise Http404 if it is not one of theirs."""
    if current is not None and handle == engine.handle(current):
        raise Http404("End the current session by logging out.")
    if not engine.end_user_session(user.pk, handle, reason=reason):
        raise Http404("No such session.")


def sessions_end_others(*, user, current, reason=events.ENDED_BY_USER) -> int:
    """End every session of ``user`` except ``current``; return how many ended."""
    return engine.end_user_sessions(user.pk, reason=reason, keep=current)


def sessions_end_all(*, user_id, reason, keep=None) -> int:
    """
    End every session of the user ``user_id`` but the session ``keep``; return how many ended.

    With an engine that cannot (engine.lists_user_sessions()), none ends now.
    """
    return engine.end_user_sessions(user_id, reason=reason, keep=keep)


def password_reset_request(*, email) -> None:
    """Queue a reset link for the account using ``email``, at most once per address and window."""
    # Counted whether or not an account uses the address, so that neither the
    # answer nor its cost says which.
    if not ratelimits.password_reset_mail_due(email):
        return
    user = selectors.user_for_password_reset(email=email)
    if user is None:
        return
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("accounts:password_reset_confirm", kwargs={"uidb64": uidb64, "token": token})
    # Rendered and sent on the task's thread: the request only queues it, so a
    # known address costs the request no more than an unknown one.
    tasks.send_password_reset_mail.enqueue(
        to=user.email, username=user.get_username(), reset_url=absolute_url(path)
    )
