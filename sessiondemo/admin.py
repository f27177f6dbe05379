from django.contrib import admin

from accounts.throttling import throttled_login


class AdminSite(admin.AdminSite):
    """Django's admin site, with the site's login throttling on its login page."""

    def login(self, request, extra_context=None):
        return throttled_login(super().login)(request, extra_context)
