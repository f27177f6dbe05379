"""The test suite's shared client helpers: browsers, logins and the sessions they leave in Redis."""

import itertools
import json

from django.conf import settings
from django.test import Client

from sessiondemo.sessions import codec
from sessiondemo.sessions.conf import key_prefix
from sessiondemo.sessions.keys import (
    NAME_LENGTH,
    index_buckets_key,
    new_session_id,
    session_handle,
    session_name,
    session_redis_key,
    user_index_key,
)

NEW_PASSWORD = "a whole new passphrase 42"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

_devices = itertools.count(1)


# -- Browsers and logins ----------------------------------------------------------


def browser(user_agent=None, ip=None, *, client_class=Client, **kwargs):
    """Return a test client on a device of its own: a distinct User-Agent and IP unless given."""
    n = next(_devices)
    user_agent = user_agent or f"Mozilla/5.0 (X11; Linux x86_64; rv:{n}.0) Gecko/20100101 Firefox/{n}.0"
    ip = ip or f"198.18.{n // 256 % 256}.{n % 256}"
    return client_class(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip, **kwargs)


def submit_login(client, user, password, **extra):
    """Post the login form for ``user`` on ``client`` and return the response, whatever it is."""
    return client.post(
        "/accounts/login/",
        {"username": user.username, "password": password},
        secure=True,
        **extra,
    )


def log_in_response(client, user, password, **extra):
    """Log ``user`` in on ``client``, assert the redirect that means success, and return the response."""
    response = submit_login(client, user, password, **extra)
    assert response.status_code == 302, response.status_code
    return response


def log_in(client, user, password):
    """Log ``user`` in on ``client`` and return the new session id."""
    return log_in_response(client, user, password).cookies[settings.SESSION_COOKIE_NAME].value


async def alog_in(client, user, password):
    """Log ``user`` in on the AsyncClient ``client`` and return the new session id."""
    response = await client.post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    )
    assert response.status_code == 302, response.status_code
    return response.cookies[settings.SESSION_COOKIE_NAME].value


async def async_session_round(store_class, user, password):
    """
    Through the ASGI handler (an AsyncClient): log in, read /profile/ (an async
    view), write a key with the async store, list the user's sessions and log
    out; return the session id and what each step saw.
    """
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    client = AsyncClient()
    session_id = await alog_in(client, user, password)
    profile = await client.get("/profile/", secure=True)
    store = store_class(session_id)
    await store.aset("colour", "green")
    await store.asave()
    listed = await store_class.auser_sessions(user.pk)
    written = await store_class(session_id).aget("colour")
    logout = await client.post("/accounts/logout/", secure=True)
    after = await client.get("/profile/", secure=True)
    # The test client kept the database connection open in asgiref's thread.
    await sync_to_async(connections.close_all)()
    return session_id, {
        "profile": (profile.status_code, user.username in profile.text),
        "written": written,
        "listed": [info.handle for info in listed],
        "logout": logout.status_code,
        "after": after.status_code,
    }


def async_round_as_expected(session_id):
    """Return what async_session_round() sees when all goes well for ``session_id``."""
    return {
        "profile": (200, True),
        "written": "green",
        "listed": [handle_of(session_id)],
        "logout": 302,
        "after": 302,
    }


def admin_browser(password, *, username="root"):
    """Create the superuser ``username`` and return a browser logged in to the admin as them."""
    from accounts.models import User

    User.objects.create_superuser(username, f"{username}@example.com", password)
    client = browser("curl/8.5.0", "192.0.2.1", raise_request_exception=False)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, secure=True
    )
    assert response.status_code == 302, response.status_code
    return client


def change_password(client, old_password, new_password):
    """Post the password change form on ``client`` and return the response."""
    return client.post(
        "/accounts/password_change/",
        {"old_password": old_password, "new_password1": new_password, "new_password2": new_password},
        secure=True,
    )


def is_logged_in(client):
    """Return whether ``client`` may see /profile/; assert that the only other answer is the login page."""
    response = client.get("/profile/", secure=True)
    if response.status_code == 302:
        assert response["Location"] == "/accounts/login/?next=/profile/"
        return False
    assert response.status_code == 200
    return True


def assert_unavailable(response):
    """Assert the site's 503 page: no error details, a Retry-After, and the session cookie untouched."""
    assert response.status_code == 503
    # The site's own page (SESSION_REDIS_UNAVAILABLE_RESPONSE), not the engine's plain default.
    assert "The site is temporarily unavailable (503)" in response.text
    for internal in ("Traceback", "Error", "127.0.0.1", "redis://", "socket"):
        assert internal not in response.text
    assert response["Retry-After"].isdigit()
    assert settings.SESSION_COOKIE_NAME not in response.cookies


# -- What Redis holds -----------------------------------------------------------------


def issued_session_id():
    """Return an id of the kind the server issues, which no session has (yet)."""
    return new_session_id()


def redis_key(session_id):
    """Return the Redis key of the hash that holds ``session_id``'s session."""
    return session_redis_key(session_name(session_id))


def handle_of(session_id):
    """Return the public handle of ``session_id``, as pages and log records show it."""
    return session_handle(session_name(session_id))


def session_exists(redis, session_id):
    """Return whether Redis holds the session ``session_id``."""
    return redis.exists(redis_key(session_id)) == 1


def indexed(redis, user):
    """Return the session names filed in ``user``'s index."""
    return set(index_entries(redis, user.pk))


def index_entries(redis, user_id):
    """Return ``user_id``'s index as Redis holds it: {name: when it was filed (ms, whole seconds)}, oldest first."""
    prefix = f"{user_id}|".encode()
    found = [
        (field[len(prefix) :].decode(), int(filed) * 1000)
        for field, filed in redis.hgetall(user_index_key(user_id)).items()
        if field.startswith(prefix) and len(field) == len(prefix) + NAME_LENGTH
    ]
    return dict(sorted(found, key=lambda entry: entry[1]))


def index_count(redis, user_id):
    """Return how many entries ``user_id``'s index counts (its "<user id>|" field), 0 if none."""
    return int(redis.hget(user_index_key(user_id), f"{user_id}|") or 0)


def file_in_index(redis, user_id, entries):
    """File ``entries`` ({name: filing time in ms}) in ``user_id``'s index, as the engine lays it out, replacing those names' entries."""
    bucket = user_index_key(user_id)
    for name, filed in entries.items():
        added = redis.hset(bucket, f"{user_id}|{name}", filed // 1000)
        redis.hincrby(bucket, f"{user_id}|", added)
    redis.sadd(index_buckets_key(), bucket)


def session_keys(redis):
    """Return every key of a session (or of an id that leads to one) that ``redis`` holds."""
    return list(redis.scan_iter(f"{key_prefix()}s:*"))


def make_renewal_due(redis, settings, session_id, *, after=600):
    """Turn on id renewal and make ``session_id`` look issued ``after`` + 1 s ago."""
    settings.SESSION_REDIS_RENEW_AFTER = after
    past = redis_ms(redis) - (after + 1) * 1000
    set_times(redis, session_id, created=past, issued=past)


def redis_ms(redis):
    """Return Redis's clock in epoch milliseconds, the clock the engine keeps time by."""
    seconds, microseconds = redis.time()
    return seconds * 1000 + microseconds // 1000


def file_long_ago(redis, user):
    """Make every entry of ``user``'s index look filed before readers' margin, so that they may prune it."""
    from sessiondemo.sessions.index import NEW_ENTRY_MARGIN_MS

    entries = index_entries(redis, user.pk)
    if entries:
        file_in_index(redis, user.pk, {name: filed - NEW_ENTRY_MARGIN_MS - 1 for name, filed in entries.items()})


def stored(redis, session_id):
    """Return the session ``session_id`` as Redis holds it (codec.Value), or None."""
    raw = redis.get(redis_key(session_id))
    return codec.decode(session_name(session_id), raw) if raw else None


def stored_data(redis, session_id):
    """Return the keys and values Redis holds for the session ``session_id``."""
    return json.loads(stored(redis, session_id).data)


def write_session_value(redis, session_id, key, value):
    """Set ``key`` of the session ``session_id`` in Redis as another request of the site would."""
    _rewrite(redis, session_id, lambda data: data.__setitem__(key, value))


def remove_session_value(redis, session_id, key):
    """Remove ``key`` from the session ``session_id`` in Redis as another request of the site would."""
    _rewrite(redis, session_id, lambda data: data.pop(key))


def _rewrite(redis, session_id, change):
    current = stored(redis, session_id)
    data = json.loads(current.data)
    change(data)
    current.data = json.dumps(data, separators=(",", ":")).encode()
    current.version += 1
    head, tail = codec.encode(session_name(session_id), current)
    redis.set(redis_key(session_id), head + codec.encode_times(current) + tail, keepttl=True)


def end_grace_in(redis, session_id, ms):
    """Make the renewed id ``session_id`` (a stub) reach the end of its grace period in ``ms``."""
    raw = redis.get(redis_key(session_id))
    assert codec.decode_stub(raw) is not None
    until = redis_ms(redis) + ms
    redis.set(redis_key(session_id), raw[:1] + until.to_bytes(6, "big") + raw[7:], px=ms)


def set_times(redis, session_id, **times):
    """
    Set the times (``created``, ``deadline``, ``issued``: epoch ms) Redis keeps with a session.

    As if time had passed: a test never sleeps. The times are not covered by
    the session's tag, so this changes nothing else.
    """
    current = stored(redis, session_id)
    for name, ms in times.items():
        setattr(current, f"{name}_ms", ms)
    raw = redis.get(redis_key(session_id))
    redis.set(redis_key(session_id), raw[:9] + codec.encode_times(current) + raw[27:], keepttl=True)
