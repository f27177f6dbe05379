from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class SessionDemoConfig(AppConfig):
    """The project package itself: its deploy checks, and the throttle's scripts registered."""

    name = "sessiondemo"

    def ready(self):
        from . import checks, throttle  # noqa: F401


class AdminConfig(DjangoAdminConfig):
    default_site = "sessiondemo.admin.AdminSite"
