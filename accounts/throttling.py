"""
Password-check throttling: failures counted per account, device and client network in Redis.

Every password the site checks goes through accounts.backends, which calls
start() before verifying it: that reserves an attempt on each budget in one
step (refused at the limit), so that parallel checks can never verify more
passwords than the limit. A right password gives its attempts back; a wrong
one keeps them as the failure. An account is locked for ACCOUNTS_LOGIN_COOL_OFF
seconds once it reaches ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT failures within
ACCOUNTS_LOGIN_FAILURE_WINDOW, and so is a client network (an IPv4
address, an IPv6 /64; sessiondemo.clients.client_network) at
ACCOUNTS_LOGIN_FAILURES_PER_IP failures across accounts. A locked check is
refused before the password is looked at, so the right password does not get
through either; the answer is the same whether or not the account exists.

The account is the one the username resolves to (its pk), else the username's
canonical form, so that every spelling of one name spends one budget.

A browser that logged in to the account before (accounts.devices) has a
budget of its own of the same size, and spends neither the account's nor its
network's while it lasts: a guesser who locks the account locks out strangers,
not its owner. A device that spends its budget is a stranger again.
"""

import logging

from django.conf import settings
from django.utils.crypto import salted_hmac

from sessiondemo import logsafe, throttle
from sessiondemo.clients import client_network

from . import devices, engine
from .usernames import canonical

security_logger = logging.getLogger("django.security.sessiondemo.login")


class LoginThrottled(Exception):
    """Occurs when a password check is refused because its account or client is locked."""

    def __init__(self, retry_after):
        super().__init__(f"Too many failed password checks; retry after {retry_after} s.")
        self.retry_after = retry_after


def _failures_per_account():
    return getattr(settings, "ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT", 5)


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
    return _counter(f"account:{name}", _failures_per_account())


def _device_counter(device):
    # A device's own budget is as large as the one strangers share.
    return _counter(f"device:{device}", _failures_per_account())


def _ip_counter(network):
    return _counter(f"ip:{network}", getattr(settings, "ACCOUNTS_LOGIN_FAILURES_PER_IP", 30))


class Attempt:
    """One password check, holding an attempt reserved on each of its counters."""

    def __init__(self, request, budgets, counts):
        self.request = request
        self.budgets = budgets
        self.counts = counts

    def succeeded(self):
        """Give the attempts back: the password was right."""
        session = getattr(self.request, "session", None)
        # With the login's save, in its round trip, if the engine can; else now.
        if not engine.run_with_next_write(session, throttle.release_calls(*self.budgets.values())):
            throttle.release(*self.budgets.values())

    def failed(self):
        """Keep the attempts as the failure; log when it is the one that locks."""
        if any(c.limit == n for c, n in zip(self.budgets.values(), self.counts)):
            security_logger.warning(
                "Login locked after repeated failures: network=%s %s",
                logsafe.text(client_network(self.request)) if self.request is not None else None,
                " ".join(f"{name}_failures={n}" for name, n in zip(self.budgets, self.counts)),
            )


def start(request, *, user, username):
    """
    Reserve an attempt to check a password of ``user`` (None: ``username`` names no account).

    A browser with a valid device cookie for ``user`` spends its device's
    budget while that lasts; any other attempt spends the account's budget
    (the one all strangers share) and the client network's. Return the
    Attempt, which the caller ends with succeeded() or failed(); raise
    LoginThrottled, reserving nothing, if a budget is spent.
    """
    device = devices.device_of(request, user) if request is not None else None
    if device is not None:
        budgets = {"device": _device_counter(device)}
        retry_after, counts = throttle.reserve(*budgets.values())
        if not retry_after:
            return Attempt(request, budgets, counts)
        # The device spent its own budget: from now on it is a stranger.
    budgets = {"account": _account_counter(user, username)}
    if request is not None:
        budgets["ip"] = _ip_counter(client_network(request))
    retry_after, counts = throttle.reserve(*budgets.values())
    if retry_after:
        raise LoginThrottled(retry_after)
    return Attempt(request, budgets, counts)
