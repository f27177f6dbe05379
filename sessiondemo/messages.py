"""The messages cookie, hardened like the session cookie whether it is set or deleted."""

from django.conf import settings
from django.contrib.messages.storage import cookie


class CookieStorage(cookie.CookieStorage):
    """Django's cookie storage, deleting its cookie with the attributes it sets it with."""

    def _update_cookie(self, encoded_data, response):
        if encoded_data:
            super()._update_cookie(encoded_data, response)
        else:
            # Django's delete_cookie() would leave out HttpOnly, and Secure too
            # for a name without a __Host- or __Secure- prefix.
            response.set_cookie(
                self.cookie_name,
                "",
                max_age=0,
                expires="Thu, 01 Jan 1970 00:00:00 GMT",
                domain=settings.SESSION_COOKIE_DOMAIN,
                secure=settings.SESSION_COOKIE_SECURE or None,
                httponly=settings.SESSION_COOKIE_HTTPONLY or None,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
