"""The whole server-side session workflow, as a browser and an attacker see it."""

import pytest
from django.conf import settings
from django.test import Client

from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import index_buckets_key, session_name, user_index_key
from sessiondemo.testing.web import (
    index_entries,
    redis_key,
    stored,
    stored_data,
    submit_login,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


def test_login_sets_a_hardened_session_cookie(client, user, password):
    response = submit_login(client, user, password)

    assert response.status_code == 302
    assert response["Location"] == settings.LOGIN_REDIRECT_URL
    morsel = response.cookies[COOKIE]
    assert COOKIE.startswith("__Host-")
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""
    assert morsel["max-age"] == "" and morsel["expires"] == ""


def test_login_stores_the_session_in_redis_under_a_keyed_hash(client, user, password, redis):
    session_id = submit_login(client, user, password).cookies[COOKIE].value

    key = redis_key(session_id)
    session = stored(redis, session_id)
    assert session.user_id == str(user.pk)
    assert stored_data(redis, session_id)["_auth_user_id"] == str(user.pk)
    assert 0 < redis.ttl(key) <= settings.SESSION_COOKIE_AGE
    # Nothing in Redis names or contains the cookie's value.
    for name in redis.scan_iter():
        assert session_id.encode() not in name
        kind = redis.type(name)
        if kind == b"string":
            assert session_id.encode() not in redis.get(name)
        elif kind == b"hash":
            assert not any(session_id.encode() in item for pair in redis.hgetall(name).items() for item in pair)
    assert session_name(session_id) in index_entries(redis, user.pk)


def test_profile_with_the_cookie_shows_the_user(client, user, password):
    submit_login(client, user, password)

    response = client.get("/profile/", secure=True)

    assert response.status_code == 200
    assert user.username in response.text
    assert {"no-store", "private"} <= {d.strip() for d in response["Cache-Control"].split(",")}
    assert "Cookie" in response["Vary"]


def test_logout_deletes_the_session_and_a_replayed_cookie_gets_nothing(client, user, password, redis):
    session_id = submit_login(client, user, password).cookies[COOKIE].value

    assert client.get("/accounts/logout/", secure=True).status_code == 405
    response = client.post("/accounts/logout/", secure=True)

    assert response.status_code == 302
    assert response.cookies[COOKIE]["max-age"] == 0
    assert response["Clear-Site-Data"] == '"cache", "storage"'
    assert redis.exists(redis_key(session_id)) == 0
    replay = Client()
    replay.cookies[COOKIE] = session_id
    response = replay.get("/profile/", secure=True)
    assert response.status_code == 302
    assert response["Location"] == f"{settings.LOGIN_URL}?next=/profile/"
    # Not recreated, and not counted as a guess: the server issued that id.
    # Left: the user's index (whose entry goes when a reader finds the session
    # gone), the list of index buckets and the login's throttle counters, all
    # expiring on their own.
    left = sorted(redis.scan_iter())
    assert left == sorted([index_buckets_key().encode(), user_index_key(user.pk).encode(), *redis.scan_iter("sd:t:login:*")])
    assert all(redis.ttl(key) > 0 for key in left)
    # "Your sessions" lists none.
    assert SessionStore.user_sessions(user.pk) == []


def test_anonymous_profile_redirects_to_login_with_next(client):
    response = client.get("/profile/", secure=True)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/profile/"
