"""Deactivating or deleting an account ends its sessions at once, through the ORM or the admin."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from django.contrib.auth import SESSION_KEY

from accounts.models import User
from accounts.tests.factories import UserFactory
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.testing.web import browser, index_entries, is_logged_in, log_in, session_exists

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(user, password):
    """``user`` signed in on two browsers: the clients and their session ids."""
    clients = [browser(ip="203.0.113.10"), browser(ip="198.51.100.7")]
    return clients, [log_in(c, user, password) for c in clients]


@pytest.fixture
def bystander(password):
    """Another account, signed in: its client and session id."""
    other = UserFactory(password=password)
    client = browser(ip="192.0.2.99")
    return client, log_in(client, other, password)


def assert_signed_out(redis, user_pk, signed_in):
    clients, ids = signed_in
    assert not any(session_exists(redis, session_id) for session_id in ids)
    assert index_entries(redis, user_pk) == {}
    assert not any(is_logged_in(c) for c in clients)


def assert_untouched(redis, bystander):
    client, session_id = bystander
    assert session_exists(redis, session_id)
    assert is_logged_in(client)


def change_form_data(user, **changes):
    """The admin change form of ``user`` as posted with ``changes``; absent booleans are off."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "is_active": "on",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


# Deactivation


def test_deactivating_a_user_through_the_orm_ends_their_sessions(user, signed_in, bystander, redis):
    user.is_active = False
    user.save()

    assert_signed_out(redis, user.pk, signed_in)
    assert_untouched(redis, bystander)


def test_deactivating_with_update_fields_ends_their_sessions(user, signed_in, redis):
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert_signed_out(redis, user.pk, signed_in)


def test_saving_an_active_user_keeps_their_sessions(user, signed_in, redis):
    user.first_name = "Alice"
    user.save()

    clients, ids = signed_in
    assert all(session_exists(redis, session_id) for session_id in ids)
    assert all(is_logged_in(c) for c in clients)


def test_a_deactivated_user_cannot_sign_in_again(user, password, signed_in, redis):
    user.is_active = False
    user.save()

    response = browser().post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    )

    assert response.status_code == 200
    assert list(redis.scan_iter(match="sd:s:*")) == []


def test_reactivating_a_user_does_not_bring_sessions_back(user, signed_in, redis):
    user.is_active = False
    user.save()
    user.is_active = True
    user.save()

    assert_signed_out(redis, user.pk, signed_in)


def test_deactivating_a_user_in_the_admin_ends_their_sessions(
    admin_client, user, signed_in, bystander, redis
):
    response = admin_client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        change_form_data(user, is_active=None),
        secure=True,
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active
    assert_signed_out(redis, user.pk, signed_in)
    assert_untouched(redis, bystander)
    assert admin_client.get("/admin/", secure=True).status_code == 200


def test_editing_a_user_in_the_admin_keeps_their_sessions(admin_client, user, signed_in, redis):
    response = admin_client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        change_form_data(user, first_name="Alice"),
        secure=True,
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.first_name == "Alice" and user.is_active
    clients, ids = signed_in
    assert all(session_exists(redis, session_id) for session_id in ids)
    assert all(is_logged_in(c) for c in clients)


# Deletion


def test_deleting_a_user_through_the_orm_ends_their_sessions(user, signed_in, bystander, redis):
    user_pk = user.pk
    user.delete()

    assert_signed_out(redis, user_pk, signed_in)
    assert_untouched(redis, bystander)


def test_deleting_users_in_bulk_ends_their_sessions(user, password, signed_in, bystander, redis):
    second = UserFactory(password=password)
    second_client = browser()
    log_in(second_client, second, password)

    User.objects.filter(pk__in=[user.pk, second.pk]).delete()

    assert_signed_out(redis, user.pk, signed_in)
    assert not is_logged_in(second_client)
    assert_untouched(redis, bystander)


def test_deleting_a_user_in_the_admin_ends_their_sessions(
    admin_client, user, signed_in, bystander, redis
):
    user_pk = user.pk
    response = admin_client.post(
        reverse("admin:accounts_user_delete", args=[user_pk]), {"post": "yes"}, secure=True
    )

    assert response.status_code == 302
    assert not User.objects.filter(pk=user_pk).exists()
    assert_signed_out(redis, user_pk, signed_in)
    assert_untouched(redis, bystander)


def test_a_staff_user_without_the_change_permission_cannot_deactivate(
    user, password, signed_in, redis
):
    viewer = UserFactory(password=password, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = browser()
    log_in(client, viewer, password)

    response = client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        change_form_data(user, is_active=None),
        secure=True,
    )

    assert response.status_code == 403
    user.refresh_from_db()
    assert user.is_active
    assert all(is_logged_in(c) for c in signed_in[0])


def test_a_login_racing_a_deactivation_is_ended_when_it_commits(
    user, password, redis, django_capture_on_commit_callbacks
):
    before = log_in(browser(), user, password)

    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()
        assert not session_exists(redis, before)
        # What a login in another process, still seeing the account active, stores.
        racing_session = SessionStore()
        racing_session[SESSION_KEY] = str(user.pk)
        racing_session.save()
        racing = racing_session.session_key
        assert session_exists(redis, racing)

    assert not session_exists(redis, racing)
    assert index_entries(redis, user.pk) == {}
