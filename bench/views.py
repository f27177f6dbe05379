"""Two pages only the benchmark has: the least a page that reads, or writes, the session does."""

from django.http import HttpResponse, HttpResponseForbidden


def read_session(request):
    """Answer a logged-in visitor with their user id: session read, user loaded and checked."""
    if not request.user.is_authenticated:
        return HttpResponseForbidden("not logged in")
    return HttpResponse(str(request.user.pk), content_type="text/plain")


def write_session(request):
    """Store ``?page=`` in a logged-in visitor's session, as a page that remembers a place."""
    if not request.user.is_authenticated:
        return HttpResponseForbidden("not logged in")
    request.session["last_page"] = request.GET["page"]
    return HttpResponse(str(request.user.pk), content_type="text/plain")
