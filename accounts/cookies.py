"""
The password reset cookie: the token of the link a browser followed, kept by that browser.

Django keeps it in the session, which would make every visit of a valid link
a Redis session for the link's three days. Here it rides in a signed
``__Host-`` cookie, bound to the link's account, for a few minutes, and the
reset deletes it.
"""

RESET_COOKIE = "__Host-password-reset"
RESET_COOKIE_AGE = 15 * 60
_SALT = "accounts.password_reset"
# Lax, not Strict: the link is followed from a mail client or a webmail, another
# site, and a Strict cookie would not come back with the redirect to the form.
_ATTRIBUTES = {"path": "/", "secure": True, "httponly": True, "samesite": "Lax"}


def remember_reset_token(response, uidb64, token):
    """Have the browser keep ``token``, for the account ``uidb64`` only."""
    response.set_signed_cookie(
        RESET_COOKIE, f"{uidb64}:{token}", salt=_SALT, max_age=RESET_COOKIE_AGE, **_ATTRIBUTES
    )


def remembered_reset_token(request, uidb64):
    """Return the token the browser keeps for the account ``uidb64``, or None."""
    value = request.get_signed_cookie(
        RESET_COOKIE, default=None, salt=_SALT, max_age=RESET_COOKIE_AGE
    )
    cookie_uidb64, _, token = (value or "").partition(":")
    return token if value and cookie_uidb64 == uidb64 else None


def forget_reset_token(response):
    """Have the browser delete the reset cookie."""
    response.set_cookie(
        RESET_COOKIE, "", max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT", **_ATTRIBUTES
    )
