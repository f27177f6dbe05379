"""
Limits on the account forms anyone may post, counted in Redis.

Per client network (an IPv4 address or an IPv6 /64, sessiondemo.clients.client_network):
past a limit the client gets 429 until the window's counter expires. Per e-mail address: one reset mail per window, whoever asks. (Failed
logins have their own counters, in throttling.py.)
"""

import logging

from django.conf import settings
from django.utils.crypto import salted_hmac

from sessiondemo import throttle
from sessiondemo.clients import client_network

from . import emails

security_logger = logging.getLogger("django.security.sessiondemo.accounts")


def _blocked_for(request, action, limit):
    """Count ``action`` for this client; return for how long it is refused (0: allowed)."""
    window = getattr(settings, "ACCOUNTS_THROTTLE_WINDOW", 15 * 60)
    network = client_network(request)
    counter = throttle.Counter(f"{action}:ip:{network}", limit=limit, window=window)
    ((count, ttl),) = throttle.hit(counter)
    if count <= limit:
        return 0
    if count == limit + 1:
        security_logger.warning("Throttled %s: network=%s, %d in the window", action, network, limit)
    return max(ttl, 1)


def signup_blocked_for(request):
    """Count a sign-up from this client; return for how long sign-ups from it are refused."""
    return _blocked_for(request, "signup", getattr(settings, "ACCOUNTS_SIGNUPS_PER_IP", 10))


def password_reset_blocked_for(request):
    """Count a reset request from this client; return for how long its requests are refused."""
    limit = getattr(settings, "ACCOUNTS_PASSWORD_RESETS_PER_IP", 5)
    return _blocked_for(request, "password-reset", limit)


def password_reset_link_blocked_for(request):
    """Count a visit of a reset link from this client; return for how long visits are refused."""
    limit = getattr(settings, "ACCOUNTS_PASSWORD_RESET_LINKS_PER_IP", 20)
    return _blocked_for(request, "password-reset-link", limit)


def password_reset_mail_due(email):
    """Count a reset request for ``email``; return True if it is the first in its window."""
    # A keyed hash: Redis holds no addresses, and the key has a fixed shape.
    name = salted_hmac(
        "accounts.ratelimits", emails.canonical(email) or "", algorithm="sha256"
    ).hexdigest()[:32]
    interval = getattr(settings, "ACCOUNTS_PASSWORD_RESET_MAIL_INTERVAL", 15 * 60)
    counter = throttle.Counter(f"password-reset-mail:{name}", limit=1, window=interval)
    ((count, _),) = throttle.hit(counter)
    return count == 1
