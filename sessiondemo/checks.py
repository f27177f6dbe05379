"""
Deploy checks for what Django's own do not cover (run by ``check --deploy``).

Django checks SESSION_COOKIE_SECURE and friends only for its own session
middleware; this project uses a subclass, so the session cookie is checked
here, with the rest of what a Redis-backed session site needs.
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Info, Tags, Warning, register
from django.core.checks.security import base as security_base
from django.core.checks.security import csrf as security_csrf
from django.http.request import split_domain_port, validate_host
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.test.utils import override_settings
from django.utils.csp import CSP
from django.utils.module_loading import import_string

from sessiondemo.site import configured_site_url

ONE_YEAR = 365 * 24 * 60 * 60
JSON_SERIALIZERS = {
    "django.contrib.sessions.serializers.JSONSerializer",
    "django.core.signing.JSONSerializer",
}


def _cookie_problems(prefix):
    name = getattr(settings, f"{prefix}_COOKIE_NAME")
    problems = []
    if not name.startswith("__Host-"):
        problems.append(f"{prefix}_COOKIE_NAME should start with '__Host-'")
    if getattr(settings, f"{prefix}_COOKIE_SECURE") is not True:
        problems.append(f"{prefix}_COOKIE_SECURE should be True")
    if getattr(settings, f"{prefix}_COOKIE_PATH") != "/":
        problems.append(f"{prefix}_COOKIE_PATH should be '/'")
    if getattr(settings, f"{prefix}_COOKIE_DOMAIN") is not None:
        problems.append(f"{prefix}_COOKIE_DOMAIN should be None")
    if getattr(settings, f"{prefix}_COOKIE_SAMESITE") not in ("Lax", "Strict"):
        problems.append(f"{prefix}_COOKIE_SAMESITE should be 'Lax' or 'Strict'")
    return problems


@register(Tags.security, deploy=True)
def check_cookies(app_configs, **kwargs):
    problems = _cookie_problems("SESSION") + _cookie_problems("CSRF")
    if settings.SESSION_COOKIE_HTTPONLY is not True:
        problems.append("SESSION_COOKIE_HTTPONLY should be True")
    if settings.CSRF_USE_SESSIONS:
        problems.append("CSRF_USE_SESSIONS should be False (it makes a session for every visitor)")
    return [
        Warning(
            f"The session and CSRF cookies are not hardened: {'; '.join(problems)}.",
            hint="A __Host- cookie is Secure, has Path=/ and no Domain, so no subdomain can set it.",
            id="sessiondemo.W001",
        )
    ] if problems else []


# The site's subclasses of Django's middleware (sessiondemo.middleware), by
# the paths Django's own checks look for.
DJANGO_PATHS = {
    "sessiondemo.middleware.SecurityMiddleware": "django.middleware.security.SecurityMiddleware",
    "sessiondemo.middleware.XFrameOptionsMiddleware": "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sessiondemo.middleware.ContentSecurityPolicyMiddleware": "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "sessiondemo.middleware.CsrfViewMiddleware": "django.middleware.csrf.CsrfViewMiddleware",
}
# Those of Django's checks that look for them; the "not in MIDDLEWARE" ones
# that settings.SILENCED_SYSTEM_CHECKS silences come back as sessiondemo.<id>.
DJANGO_DEPLOY_CHECKS = [
    security_base.check_security_middleware,
    security_base.check_xframe_options_middleware,
    security_base.check_sts,
    security_base.check_sts_include_subdomains,
    security_base.check_sts_preload,
    security_base.check_content_type_nosniff,
    security_base.check_ssl_redirect,
    security_base.check_xframe_deny,
    security_base.check_referrer_policy,
    security_base.check_cross_origin_opener_policy,
    security_csrf.check_csrf_middleware,
    security_csrf.check_csrf_cookie_secure,
]
RENAMED = {"security.W001", "security.W002", "security.W003"}


@register(Tags.security, deploy=True)
def check_django_middleware(app_configs, **kwargs):
    """Run Django's checks of its middleware, and of the settings they serve, on the site's subclasses."""
    return _as_django_sees_it(DJANGO_DEPLOY_CHECKS, app_configs)


@register(Tags.security)
def check_django_csp_nonce(app_configs, **kwargs):
    return _as_django_sees_it([security_base.check_csp_nonce_context_processor], app_configs)


def _as_django_sees_it(django_checks, app_configs):
    middleware = [DJANGO_PATHS.get(path, path) for path in settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware):
        messages = [message for check in django_checks for message in check(app_configs)]
    return [
        type(message)(message.msg, hint=message.hint, obj=message.obj, id=f"sessiondemo.{message.id}")
        if message.id in RENAMED
        else message
        for message in messages
    ]


def installed(middleware_class):
    """Return True if MIDDLEWARE holds ``middleware_class`` or a subclass of it."""
    for path in settings.MIDDLEWARE:
        try:
            if issubclass(import_string(path), middleware_class):
                return True
        except ImportError:
            continue
    return False


@register(Tags.security, deploy=True)
def check_csp(app_configs, **kwargs):
    policy = getattr(settings, "SECURE_CSP", None) or {}
    problems = []
    if not installed(ContentSecurityPolicyMiddleware):
        problems.append("ContentSecurityPolicyMiddleware is not in MIDDLEWARE")
    for directive in ("object-src", "base-uri", "frame-ancestors"):
        if policy.get(directive) != [CSP.NONE]:
            problems.append(f"'{directive}' should be [CSP.NONE]")
    scripts = policy.get("script-src", policy.get("default-src"))
    if not scripts:
        problems.append("no 'script-src' or 'default-src'")
    elif {CSP.UNSAFE_INLINE, CSP.UNSAFE_EVAL} & set(scripts):
        problems.append("'script-src' allows unsafe-inline or unsafe-eval")
    return [
        Warning(
            f"The Content Security Policy is missing or weak: {'; '.join(problems)}.",
            hint="Set SECURE_CSP with django.utils.csp.CSP constants.",
            id="sessiondemo.W002",
        )
    ] if problems else []


@register(Tags.security, deploy=True)
def check_allowed_hosts(app_configs, **kwargs):
    if any(host == "*" or host == "." for host in settings.ALLOWED_HOSTS):
        return [
            Warning(
                "ALLOWED_HOSTS accepts any host name.",
                hint="List the site's host names in DJANGO_ALLOWED_HOSTS.",
                id="sessiondemo.W003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_https(app_configs, **kwargs):
    if settings.SECURE_HSTS_SECONDS < ONE_YEAR or not settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        return [
            Warning(
                "HSTS is shorter than a year or leaves out subdomains.",
                hint="SECURE_HSTS_SECONDS >= 31536000 and SECURE_HSTS_INCLUDE_SUBDOMAINS = True.",
                id="sessiondemo.W004",
            )
        ]
    return []


def _site_url_problems(url):
    if not url:
        return ["it is not set"]
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        return ["its port is not a number"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ["it is not an absolute http(s) URL"]
    problems = []
    if parts.scheme != "https" and not settings.DEBUG:
        problems.append("it should be https")
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append("it should name only the scheme, host and port")
    host, _ = split_domain_port(parts.netloc.rpartition("@")[2])
    if not validate_host(host, settings.ALLOWED_HOSTS):
        problems.append("its host is not in ALLOWED_HOSTS")
    return problems


@register(Tags.security, deploy=True)
def check_site_url(app_configs, **kwargs):
    url = configured_site_url()
    if problems := _site_url_problems(url):
        return [
            Warning(
                f"SITE_URL {url!r} is not the site's address: {'; '.join(problems)}.",
                hint="Set DJANGO_SITE_URL to the site's https origin, e.g. "
                "https://sessions.example.com: links in mail and the https redirect are "
                "built from it, never from the request's Host header.",
                id="sessiondemo.W010",
            )
        ]
    return []


def _session_redis_url():
    return settings.CACHES[settings.SESSION_CACHE_ALIAS]["LOCATION"]


def _is_local(url):
    parts = urlsplit(url)
    if parts.scheme == "unix" or parts.hostname in (None, "localhost"):
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@register(Tags.security, deploy=True)
def check_session_store(app_configs, **kwargs):
    messages = []
    url = _session_redis_url()
    options = settings.CACHES[settings.SESSION_CACHE_ALIAS].get("OPTIONS", {})
    if sentinels := options.get("SENTINELS"):
        # With Sentinel the URL's host names the service; the sentinels say where Redis is.
        local = all(_is_local(f"redis://{host}:{port}") for host, port in sentinels)
        tls = urlsplit(url).scheme == "rediss"
    else:
        # A cluster's LOCATION names several nodes, comma-separated.
        urls = url.split(",")
        local = all(_is_local(u) for u in urls)
        tls = all(urlsplit(u).scheme == "rediss" for u in urls)
    if not local and not tls:
        messages.append(
            Warning(
                "The session Redis is reached over the network without TLS.",
                hint="Use a rediss:// REDIS_URL (and a password or an ACL user).",
                id="sessiondemo.W005",
            )
        )
    if sentinels and not local and not (options.get("SENTINEL_KWARGS") or {}).get("password"):
        messages.append(
            Warning(
                "The sentinels are reached over the network without a password.",
                hint="Give them requirepass in sentinel.conf and the site REDIS_SENTINEL_PASSWORD: "
                "whoever can ask a sentinel can tell the site where its sessions are.",
                id="sessiondemo.W011",
            )
        )
    if options.get("IGNORE_EXCEPTIONS"):
        messages.append(
            Warning(
                "The sessions cache ignores Redis errors.",
                hint="Remove IGNORE_EXCEPTIONS: a session store must fail loudly, not forget logins.",
                id="sessiondemo.W006",
            )
        )
    if settings.SESSION_SERIALIZER not in JSON_SERIALIZERS:
        messages.append(
            Warning(
                "SESSION_SERIALIZER is not JSON.",
                hint="Use django.contrib.sessions.serializers.JSONSerializer.",
                id="sessiondemo.W007",
            )
        )
    idle, absolute = settings.SESSION_COOKIE_AGE, getattr(settings, "SESSION_REDIS_ABSOLUTE_AGE", 0)
    if not 0 < idle <= 60 * 60 or not 0 < absolute <= 24 * 60 * 60 or idle > absolute:
        messages.append(
            Warning(
                f"Session timeouts are loose: idle {idle} s, absolute {absolute} s.",
                hint="An idle timeout of at most an hour (SESSION_COOKIE_AGE) and an "
                "absolute one of at most a day (SESSION_REDIS_ABSOLUTE_AGE).",
                id="sessiondemo.W008",
            )
        )
    return messages


@register(Tags.caches)
def check_replica_wait(app_configs, **kwargs):
    """A login that waits for replicas must get WAIT's answer before its socket times out."""
    replicas = getattr(settings, "SESSION_REDIS_MIN_REPLICAS", 0)
    wait_ms = getattr(settings, "SESSION_REDIS_REPLICA_TIMEOUT_MS", 500)
    options = settings.CACHES.get(settings.SESSION_CACHE_ALIAS, {}).get("OPTIONS", {})
    socket_timeout = options.get("SOCKET_TIMEOUT")
    if not replicas or socket_timeout is None or wait_ms < socket_timeout * 1000:
        return []
    return [
        Error(
            f"SESSION_REDIS_REPLICA_TIMEOUT_MS ({wait_ms}) is not shorter than the sessions "
            f"cache's SOCKET_TIMEOUT ({socket_timeout} s): a login would time out waiting for "
            "its replicas instead of hearing how many answered.",
            hint="Keep it well under the socket timeout (the default is 500 ms).",
            id="sessiondemo.E001",
        )
    ]


@register(Tags.security, deploy=True)
def check_eviction_policy(app_configs, **kwargs):
    from redis.exceptions import RedisClusterException, RedisError

    from sessiondemo.sessions.connection import get_client

    try:
        policies = _eviction_policies(get_client())
    except (RedisError, RedisClusterException) as e:
        return [
            Info(
                f"Could not read the session Redis's maxmemory-policy ({e.__class__.__name__}).",
                hint="Make sure it is 'noeviction': any other policy can drop live sessions.",
                id="sessiondemo.I009",
            )
        ]
    evicting = sorted(policies - {"noeviction"})
    if evicting:
        policy = ", ".join(evicting)
        return [
            Warning(
                f"The session Redis's maxmemory-policy is {policy!r}: under memory pressure "
                "it evicts sessions, logging users out at random.",
                hint="CONFIG SET maxmemory-policy noeviction (and give it enough memory).",
                id="sessiondemo.W009",
            )
        ]
    return []


def _eviction_policies(client):
    """Return the maxmemory-policy of the session Redis: of every primary on a cluster."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        replies = [
            client.config_get("maxmemory-policy", target_nodes=node)
            for node in client.get_primaries()
        ]
    else:
        replies = [client.config_get("maxmemory-policy")]
    policies = {reply.get("maxmemory-policy") for reply in replies}
    return {p.decode() if isinstance(p, bytes) else p for p in policies}
