"""
Limits on the account forms anyone may post, counted per client IP in Redis.

Past a limit the client gets 429 until the window's counter expires. (Failed
logins have their own counters, in throttling.py.)
"""

import logging

from django.conf import settings

from sessiondemo import throttle
from sessiondemo.clients import client_ip

security_logger = logging.getLogger("django.security.sessiondemo.accounts")


def _blocked_for(request, action, limit):
    """Count ``action`` for this client; return for how long it is refused (0: allowed)."""
    window = getattr(settings, "ACCOUNTS_THROTTLE_WINDOW", 15 * 60)
    ip = client_ip(request)
    counter = throttle.Counter(f"{action}:ip:{ip}", limit=limit, window=window)
    ((count, ttl),) = throttle.hit(counter)
    if count <= limit:
        return 0
    if count == limit + 1:
        security_logger.warning("Throttled %s: ip=%s, %d in the window", action, ip, limit)
    return max(ttl, 1)


def signup_blocked_for(request):
    """Count a sign-up from this client; return for how long sign-ups from it are refused."""
    return _blocked_for(request, "signup", getattr(settings, "ACCOUNTS_SIGNUPS_PER_IP", 10))
