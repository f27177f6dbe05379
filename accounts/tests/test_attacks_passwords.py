"""
A password changed by any path ends the account's other sessions at once, in Redis, not at
their next request: the admin's forms, the command, the shell. And the messages cookie is
set and deleted with the same hardened attributes.
"""

import getpass

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from accounts.models import User
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.web import (
    index_entries,
    NEW_PASSWORD,
    browser,
    is_logged_in,
    log_in,
    session_exists,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture
def signed_in(user, password):
    """``user`` signed in on two browsers: the clients and their session ids."""
    clients = [browser(ip="203.0.113.10"), browser(ip="198.51.100.7")]
    return clients, [log_in(c, user, password) for c in clients]


def assert_signed_out_at_once(redis, user, signed_in):
    clients, ids = signed_in
    # Gone from Redis and from the list before either browser comes back.
    assert not any(session_exists(redis, session_id) for session_id in ids)
    assert index_entries(redis, user.pk) == {}
    assert not any(is_logged_in(client) for client in clients)


def set_password_in_admin(admin_client, user, **data):
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    return admin_client.post(url, data, secure=True)


def test_an_administrator_setting_a_users_password_ends_their_sessions(admin_client, user, signed_in, redis):
    response = set_password_in_admin(
        admin_client, user, usable_password="true", password1=NEW_PASSWORD, password2=NEW_PASSWORD
    )

    assert response.status_code == 302
    assert_signed_out_at_once(redis, user, signed_in)
    assert admin_client.get("/admin/", secure=True).status_code == 200
    log_in(browser(), user, NEW_PASSWORD)


def test_an_administrator_disabling_a_users_password_ends_their_sessions(admin_client, user, signed_in, redis):
    response = set_password_in_admin(admin_client, user, usable_password="false", **{"unset-password": "1"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[user.pk])
    assert_signed_out_at_once(redis, user, signed_in)


def admin_signed_in_twice(password):
    """The superuser root, signed in on two browsers: (this one, the other one, its id)."""
    root = User.objects.create_superuser("root", "root@example.com", password)
    here, there = browser(ip="192.0.2.1"), browser(ip="192.0.2.2")
    log_in(here, root, password)
    return root, here, there, log_in(there, root, password)


def test_the_admin_sites_own_password_change_ends_the_other_sessions_and_keeps_this_one(password, redis):
    root, here, there, there_id = admin_signed_in_twice(password)

    response = here.post(
        "/admin/password_change/",
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        secure=True,
    )

    assert response.status_code == 302
    new_id = response.cookies[COOKIE].value
    assert not session_exists(redis, there_id)
    # The old id's entry waits for a reader to find it gone; it lists nothing.
    assert [info.name for info in SessionStore.user_sessions(root.pk)] == [session_name(new_id)]
    assert here.get("/admin/", secure=True).status_code == 200
    assert there.get("/admin/", secure=True).status_code == 302


def test_an_administrator_setting_their_own_password_in_the_user_admin_keeps_this_session(password, redis):
    root, here, there, there_id = admin_signed_in_twice(password)

    response = set_password_in_admin(
        here, root, usable_password="true", password1=NEW_PASSWORD, password2=NEW_PASSWORD
    )

    assert response.status_code == 302
    new_id = response.cookies[COOKIE].value
    assert not session_exists(redis, there_id)
    # The old id's entry waits for a reader to find it gone; it lists nothing.
    assert [info.name for info in SessionStore.user_sessions(root.pk)] == [session_name(new_id)]
    assert here.get("/admin/", secure=True).status_code == 200


def test_the_changepassword_command_ends_the_users_sessions(user, signed_in, redis, monkeypatch):
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": NEW_PASSWORD)

    call_command("changepassword", user.username, stdout=None)

    assert_signed_out_at_once(redis, user, signed_in)


def test_a_password_set_in_the_shell_ends_the_users_sessions(user, signed_in, redis):
    user.set_password(NEW_PASSWORD)
    user.save()

    assert_signed_out_at_once(redis, user, signed_in)


def test_saving_a_user_without_a_new_password_ends_nothing(user, signed_in, redis):
    user.first_name = "Carol"
    user.save()
    user.refresh_from_db()
    user.save()

    assert all(session_exists(redis, session_id) for session_id in signed_in[1])
    assert all(is_logged_in(client) for client in signed_in[0])


# -- The messages cookie -------------------------------------------------------------------


def test_every_set_cookie_of_the_messages_cookie_is_hardened_its_deletion_too():
    client = browser()
    signed_up = client.post(
        "/accounts/signup/",
        {"username": "carol", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        secure=True,
    )
    shown = client.get(signed_up["Location"], secure=True)

    assert "Your account is ready" in shown.text
    set_, deleted = signed_up.cookies["messages"], shown.cookies["messages"]
    assert set_.value != "" and deleted.value == ""
    assert deleted["max-age"] == 0
    for morsel in (set_, deleted):
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
