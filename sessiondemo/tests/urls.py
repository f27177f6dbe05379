"""The site's URLs plus views that only tests need."""

from django.http import HttpResponse
from django.urls import path

from sessiondemo.urls import urlpatterns as site_urlpatterns


def remember(request, value):
    request.session["remembered"] = value
    return HttpResponse("remembered")


urlpatterns = [
    *site_urlpatterns,
    path("test/remember/<str:value>/", remember),
]
