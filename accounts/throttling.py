"""
Login throttling: failed logins counted per account and per client IP in Redis.

An account is locked for ACCOUNTS_LOGIN_COOL_OFF seconds once it reaches
ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT failures within ACCOUNTS_LOGIN_FAILURE_WINDOW,
and so is a client IP at ACCOUNTS_LOGIN_FAILURES_PER_IP failures across
accounts. A locked login is refused before the password is checked, so the
right password does not get through either; the answer is the same whether or
not the account exists.
"""

import functools
import logging

from django.conf import settings
from django.utils.crypto import salted_hmac

from sessiondemo import logsafe, throttle
from sessiondemo.clients import client_ip
from sessiondemo.responses import too_many_requests

security_logger = logging.getLogger("django.security.sessiondemo.login")


def _counter(name, limit):
    return throttle.Counter(
        f"login:{name}",
        limit=limit,
        window=getattr(settings, "ACCOUNTS_LOGIN_FAILURE_WINDOW", 900),
        cool_off=getattr(settings, "ACCOUNTS_LOGIN_COOL_OFF", 900),
    )


def _account_counter(username):
    # A keyed hash: Redis holds no usernames, and the key has a fixed shape.
    name = salted_hmac(
        "accounts.throttling", (username or "").casefold(), algorithm="sha256"
    ).hexdigest()[:32]
    return _counter(f"account:{name}", getattr(settings, "ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT", 5))


def _ip_counter(ip):
    return _counter(f"ip:{ip}", getattr(settings, "ACCOUNTS_LOGIN_FAILURES_PER_IP", 30))


def login_blocked_for(request, username):
    """Return for how many seconds logins for ``username`` from this client are refused."""
    blocked_for, counts = throttle.check(_account_counter(username), _ip_counter(client_ip(request)))
    # Remembered so that a successful login resets the account's count only if it has one.
    request.account_login_failures = counts[0]
    return blocked_for


def login_failed(request, username):
    """Count a failed login for ``username`` from this client."""
    ip = client_ip(request)
    account, by_ip = _account_counter(username), _ip_counter(ip)
    (account_count, _), (ip_count, _) = throttle.hit(account, by_ip)
    if account_count == account.limit or ip_count == by_ip.limit:
        security_logger.warning(
            "Login locked after repeated failures: ip=%s account_failures=%d ip_failures=%d",
            logsafe.text(ip),
            account_count,
            ip_count,
        )


def login_succeeded(request, username):
    """Forget the failures of ``username``: its owner knew the password."""
    if getattr(request, "account_login_failures", 1):
        throttle.reset(_account_counter(username))


def throttled_login(view):
    """Refuse a login POST with 429 while its account or client is locked."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            username = request.POST.get("username", "")
            if retry_after := login_blocked_for(request, username):
                return too_many_requests(request, retry_after)
        return view(request, *args, **kwargs)

    return wrapper
