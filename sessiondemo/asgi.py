"""ASGI config for sessiondemo; exposes the ASGI callable as ``application``."""

import os

from sessiondemo.handlers import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessiondemo.settings.base")

application = get_asgi_application()
