"""
Device cookies: a browser that logged in before keeps a login budget of its own.

After OWASP's "Slow Down Online Guessing Attacks with Device Cookies": a
successful login gives the browser a long-lived cookie that names a random
device id, signed with a key that depends on the account, so the signature
is a keyed hash of the device, the account and the time it was issued. The
cookie shows neither the username nor the pk, and differs for every login.
A password check that presents a valid one for the account it tries spends
that device's budget instead of the one all strangers share (see
accounts.throttling), so a guesser cannot lock the owner out.
"""

from django.conf import settings
from django.core import signing
from django.utils.crypto import get_random_string, salted_hmac

COOKIE_NAME = "__Host-device"
_SALT = "accounts.devices"


def cookie_age():
    """Return how many seconds a device cookie is valid (ACCOUNTS_DEVICE_COOKIE_AGE)."""
    return getattr(settings, "ACCOUNTS_DEVICE_COOKIE_AGE", 365 * 24 * 60 * 60)


def _signer(user):
    return signing.TimestampSigner(salt=f"{_SALT}:{user.pk}")


def remember(request, user):
    """Give the browser behind ``request`` a new device cookie for ``user`` with the response."""
    request.device_cookie = _signer(user).sign(get_random_string(32))


def set_cookie(request, response):
    """Set the device cookie that remember() made during ``request``, if any."""
    value = getattr(request, "device_cookie", None)
    if value is not None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=cookie_age(),
            path="/",
            secure=True,
            httponly=True,
            samesite="Lax",
        )


def device_of(request, user):
    """
    Return a name for the device whose valid cookie for ``user`` ``request`` carries, else None.

    None also for a cookie that was tampered with, issued for another
    account, or is older than cookie_age().
    """
    value = request.COOKIES.get(COOKIE_NAME)
    if not value or user is None:
        return None
    try:
        device = _signer(user).unsign(value, max_age=cookie_age())
    except signing.BadSignature:
        return None
    # The name for Redis keys: a keyed hash, so that a Redis dump shows no device id.
    return salted_hmac(f"{_SALT}.counter", device, algorithm="sha256").hexdigest()[:32]
