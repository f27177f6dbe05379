"""Settings for the test suite: fast hashing, in-memory mail, a private Redis."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + "k3y" * 20)

from .base import *  # noqa: E402, F403
from .base import CACHES, DATABASES, STORAGES  # noqa: E402

from sessiondemo.testing.probes import CountingConnection  # noqa: E402

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SITE_URL = "https://testserver"
SECURE_SSL_HOST = "testserver"

# Pages name static files as they are, without collectstatic's hashed names
# (sessiondemo/tests/test_serving.py serves the collected ones).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

if not os.environ.get("DATABASE_URL"):
    DATABASES["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}

# conftest.py points this at a redis-server that the tests start on a free
# port; until then it names a port where nothing listens, so a test can never
# reach a developer's Redis.
CACHES["sessions"]["LOCATION"] = "redis://127.0.0.1:9/0"
CACHES["sessions"]["OPTIONS"]["CONNECTION_POOL_KWARGS"] = {
    "connection_class": CountingConnection,
    "health_check_interval": 0,
}

# The browser tests' live server speaks plain HTTP on localhost; the HTTPS
# redirect of production is tested with override_settings instead.
SECURE_SSL_REDIRECT = False
