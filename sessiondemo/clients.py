"""Who is on the other end of a request, as far as the server can trust it."""

from django.conf import settings

USER_AGENT_MAX_LENGTH = 512


def client_ip(request):
    """
    Return the client's IP address.

    That is the TCP peer, unless TRUSTED_PROXY_COUNT proxies stand in front:
    then it is the address the outermost of them saw, read from the right of
    X-Forwarded-For, where a client cannot forge it.
    """
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    peer = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return peer
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    return forwarded[-proxies] if len(forwarded) >= proxies else peer


def client_user_agent(request):
    """Return the request's User-Agent, cut to a length worth storing."""
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX_LENGTH]
