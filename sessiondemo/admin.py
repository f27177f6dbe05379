from django.contrib import admin


class AdminSite(admin.AdminSite):
    """Django's admin site; its login is throttled by the authentication backend."""
