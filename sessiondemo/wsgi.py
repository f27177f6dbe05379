"""WSGI config for sessiondemo; exposes the WSGI callable as ``application``."""

import os

from sessiondemo.handlers import get_wsgi_application
from sessiondemo.static import serve_static_wsgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessiondemo.settings.base")

application = serve_static_wsgi(get_wsgi_application())
