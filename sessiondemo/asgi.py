"""ASGI config for sessiondemo; exposes the ASGI callable as ``application``."""

import os

from sessiondemo.handlers import get_asgi_application
from sessiondemo.static import serve_static_asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessiondemo.settings.base")

application = serve_static_asgi(get_asgi_application())
