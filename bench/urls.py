"""The site's URLs, and the benchmark's two pages (bench/views.py)."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/read/", views.read_session),
    path("bench/write/", views.write_session),
    path("", include("sessiondemo.urls")),
]

handler500 = "sessiondemo.views.server_error"
