"""The session engines under comparison, and how to switch the benchmark to one."""

import contextlib
import dataclasses
from importlib import import_module

from django.test import override_settings

from .routing import SessionRouter

OURS = "sessiondemo.sessions.backend"


@dataclasses.dataclass(frozen=True)
class Engine:
    """One engine as measured: its module, the cache alias and database it uses."""

    label: str
    module: str
    cache_alias: str | None = None
    db_alias: str | None = None
    speed: bool = True  # False: measured for lost updates only
    # Its memory measured on Redis's default configuration too (issue 8 compares these two).
    default_config: bool = False

    @property
    def uses_redis(self):
        return self.cache_alias is not None

    @property
    def is_ours(self):
        return self.module == OURS

    @property
    def store_class(self):
        return import_module(self.module).SessionStore

    @contextlib.contextmanager
    def active(self):
        """Make this engine the session engine inside the block."""
        previous = SessionRouter.alias
        SessionRouter.alias = self.db_alias or "default"
        try:
            with override_settings(
                SESSION_ENGINE=self.module,
                SESSION_CACHE_ALIAS=self.cache_alias or "default",
            ):
                yield self.store_class
        finally:
            SessionRouter.alias = previous


def engines(with_postgres):
    """Return the engines to measure, in report order."""
    django_engines = "django.contrib.sessions.backends."
    found = [
        Engine("**sessiondemo (ours)**", OURS, cache_alias="sessiondemo", default_config=True),
        Engine(
            "cache + django-redis",
            django_engines + "cache",
            cache_alias="django-redis",
            default_config=True,
        ),  # fmt: skip
        Engine("cache + Django RedisCache", django_engines + "cache", cache_alias="django-builtin"),
        Engine(
            "cached_db + django-redis + SQLite",
            django_engines + "cached_db",
            cache_alias="django-redis",
            db_alias="default",
        ),  # fmt: skip
        Engine("db + SQLite", django_engines + "db", db_alias="default"),
    ]
    if with_postgres:
        found.append(Engine("db + PostgreSQL", django_engines + "db", db_alias="postgres"))
    found.append(Engine("signed_cookies", django_engines + "signed_cookies", speed=False))
    return found
