"""WSGI config for sessiondemo; exposes the WSGI callable as ``application``."""

import os

from sessiondemo.handlers import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessiondemo.settings.base")

application = get_wsgi_application()
