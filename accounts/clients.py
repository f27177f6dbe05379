"""Who is on the other end of a request, as far as the server can trust it."""

USER_AGENT_MAX_LENGTH = 512


def client_ip(request):
    """Return the client's IP address: the TCP peer, since no proxy is trusted."""
    return request.META.get("REMOTE_ADDR", "")


def client_user_agent(request):
    """Return the request's User-Agent, cut to a length worth storing."""
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX_LENGTH]
