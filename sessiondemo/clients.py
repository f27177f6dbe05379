"""Who is on the other end of a request, as far as the server can trust it."""

import ipaddress

from django.conf import settings

# The User-Agent as the session engine records and compares it (cut to a length worth storing).
from sessiondemo.sessions.middleware import client_user_agent  # noqa: F401

# What client_network() answers for an address that does not parse.
INVALID_NETWORK = "invalid"


def client_ip(request):
    """
    Return the client's IP address, or "" if the trusted proxy's header names none.

    That is the TCP peer, unless TRUSTED_PROXY_COUNT proxies stand in front:
    then it is the address the outermost of them saw, read from the right of
    X-Forwarded-For, where a client cannot forge it. What is not an IP
    address there is never passed on, to be stored, shown or logged.
    """
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    peer = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return peer
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if len(forwarded) < proxies:
        return peer
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return ""


def ipv6_prefix_length():
    """Return how many leading bits of an IPv6 address name one client (CLIENT_IPV6_PREFIX_LENGTH)."""
    return getattr(settings, "CLIENT_IPV6_PREFIX_LENGTH", 64)


def client_network(request):
    """
    Return the network that stands for the client in per-client counters.

    An IPv4 address stands for itself, and so does an IPv4-mapped IPv6 one. An
    IPv6 address stands for its first ipv6_prefix_length() bits, e.g.
    "2001:db8:1:2::/64": one subscriber usually gets a whole /64 and could
    otherwise escape a limit by rotating through it. Anything that is not an
    IP address (a hostile X-Forwarded-For from a trusted proxy) gives
    INVALID_NETWORK, so such clients share one budget and never name a key.
    """
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return INVALID_NETWORK
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 4:
        return str(address)
    host_bits = 128 - ipv6_prefix_length()
    return str(ipaddress.IPv6Network((int(address) >> host_bits << host_bits, 128 - host_bits)))
