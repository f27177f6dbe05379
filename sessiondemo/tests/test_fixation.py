"""Session fixation: the server issues every id, and a login always gets a fresh one."""

import pytest
from django.conf import settings
from django.test import Client
from django.utils.crypto import get_random_string

from accounts.tests.factories import UserFactory
from sessiondemo.testing.web import (
    stored_data,
    session_exists,
    stored,
    submit_login,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sessiondemo.tests.urls")]

COOKIE = settings.SESSION_COOKIE_NAME


def test_login_replaces_the_pre_login_session_id(client, user, password, redis):
    client.get("/accounts/login/", secure=True)
    pre_login = client.get("/test/remember/blue/", secure=True).cookies[COOKIE].value
    csrf_before = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert session_exists(redis, pre_login)

    response = submit_login(client, user, password)

    post_login = response.cookies[COOKIE].value
    assert post_login != pre_login
    assert not session_exists(redis, pre_login)
    assert session_exists(redis, post_login)
    assert response.cookies[settings.CSRF_COOKIE_NAME].value != csrf_before
    attacker = Client()
    attacker.cookies[COOKIE] = pre_login
    assert attacker.get("/profile/", secure=True).status_code == 302


@pytest.mark.parametrize("path", ["/accounts/login/", "/test/remember/blue/"])
def test_a_well_formed_id_the_server_never_issued_is_never_adopted(client, user, password, redis, path):
    planted = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
    client.cookies[COOKIE] = planted

    if path == "/accounts/login/":
        response = submit_login(client, user, password)
    else:
        response = client.get(path, secure=True)

    issued = response.cookies[COOKIE].value
    assert issued and issued != planted
    assert not session_exists(redis, planted)
    attacker = Client()
    attacker.cookies[COOKIE] = planted
    assert attacker.get("/profile/", secure=True).status_code == 302


def test_logging_in_as_someone_else_flushes_the_previous_session(client, user, password, redis):
    first = submit_login(client, user, password).cookies[COOKIE].value
    client.get("/test/remember/secret-of-the-first-user/", secure=True)
    other = UserFactory(password=password)

    second = submit_login(client, other, password).cookies[COOKIE].value

    assert second != first
    assert not session_exists(redis, first)
    response = client.get("/profile/", secure=True)
    assert other.username in response.text
    session = stored(redis, second)
    assert "remembered" not in stored_data(redis, second)
    assert session.user_id == str(other.pk)
