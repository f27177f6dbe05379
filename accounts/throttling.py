"""
Password-check throttling: failures counted per account and per client IP in Redis.

Every password the site checks goes through accounts.backends, which calls
start() before verifying it. An account is locked for ACCOUNTS_LOGIN_COOL_OFF
seconds once it reaches ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT failures within
ACCOUNTS_LOGIN_FAILURE_WINDOW, and so is a client IP at
ACCOUNTS_LOGIN_FAILURES_PER_IP failures across accounts. A locked check is
refused before the password is looked at, so the right password does not get
through either; the answer is the same whether or not the account exists.

The account is the one the username resolves to (its pk), else the username's
canonical form, so that every spelling of one name spends one budget.
"""

import logging

from django.conf import settings
from django.utils.crypto import salted_hmac

from sessiondemo import throttle
from sessiondemo.clients import client_ip

from .usernames import canonical

security_logger = logging.getLogger("django.security.sessiondemo.login")


class LoginThrottled(Exception):
    """Occurs when a password check is refused because its account or client is locked."""

    def __init__(self, retry_after):
        super().__init__(f"Too many failed password checks; retry after {retry_after} s.")
        self.retry_after = retry_after


def _counter(name, limit):
    return throttle.Counter(
        f"login:{name}",
        limit=limit,
        window=getattr(settings, "ACCOUNTS_LOGIN_FAILURE_WINDOW", 900),
        cool_off=getattr(settings, "ACCOUNTS_LOGIN_COOL_OFF", 900),
    )


def _account_counter(user, username):
    identity = f"pk:{user.pk}" if user is not None else f"name:{canonical(username)}"
    # A keyed hash: Redis holds no usernames, and known and unknown accounts
    # have keys of one shape.
    name = salted_hmac("accounts.throttling", identity, algorithm="sha256").hexdigest()[:32]
    return _counter(f"account:{name}", getattr(settings, "ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT", 5))


def _ip_counter(ip):
    return _counter(f"ip:{ip}", getattr(settings, "ACCOUNTS_LOGIN_FAILURES_PER_IP", 30))


class Attempt:
    """One password check, counted against its account and, with a request, its client."""

    def __init__(self, request, user, username):
        self.ip = client_ip(request) if request is not None else None
        self.account = _account_counter(user, username)
        self.counters = [self.account] + ([_ip_counter(self.ip)] if self.ip is not None else [])
        self.account_failures = 0

    def check(self):
        """Raise LoginThrottled if the account or the client is locked."""
        blocked_for, counts = throttle.check(*self.counters)
        self.account_failures = counts[0]
        if blocked_for:
            raise LoginThrottled(blocked_for)

    def succeeded(self):
        """Forget the account's failures: its owner knew the password."""
        if self.account_failures:
            throttle.reset(self.account)

    def failed(self):
        """Count the failure; log when it locks the account or the client."""
        results = throttle.hit(*self.counters)
        if any(count == counter.limit for counter, (count, _) in zip(self.counters, results)):
            security_logger.warning(
                "Login locked after repeated failures: ip=%s account_failures=%d ip_failures=%d",
                self.ip,
                results[0][0],
                results[1][0] if len(results) > 1 else 0,
            )


def start(request, *, user, username):
    """Return the Attempt to check a password of ``user`` (None: ``username`` names no account)."""
    attempt = Attempt(request, user, username)
    attempt.check()
    return attempt
