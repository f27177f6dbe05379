"""The user admin: a user's active sessions, and signing them out one user or many at a time."""

import re

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import UserFactory
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.web import (
    index_entries,
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    browser,
    is_logged_in,
    log_in,
    session_exists,
    stored,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


def change_url(user):
    return reverse("admin:accounts_user_change", args=[user.pk])


def end_sessions_url(user):
    return reverse("admin:accounts_user_end_sessions", args=[user.pk])


@pytest.fixture
def signed_in(user, password):
    """``user`` signed in on a Linux laptop and a Windows PC."""
    laptop = browser(FIREFOX_LINUX, "203.0.113.10")
    pc = browser(CHROME_WINDOWS, "198.51.100.7")
    return [laptop, pc], [log_in(laptop, user, password), log_in(pc, user, password)]


def test_the_change_page_shows_the_users_active_sessions(admin_client, user, signed_in):
    response = admin_client.get(change_url(user), secure=True)

    assert response.status_code == 200
    assert "Active sessions" in response.text
    for device, ip in (("Firefox on Linux", "203.0.113.10"), ("Chrome on Windows", "198.51.100.7")):
        assert f"<td>{device}</td>" in response.text
        assert f"<td>{ip}</td>" in response.text
    assert re.search(r"<td>(now|\d+\xa0seconds? ago)</td>", response.text)  # last active
    # Not the administrator's own session, and no session ids.
    assert "curl" not in response.text
    for session_id in signed_in[1]:
        assert session_id not in response.text
        assert session_name(session_id) not in response.text


def test_the_change_page_has_a_sign_out_of_all_sessions_button(admin_client, user, signed_in):
    page = admin_client.get(change_url(user), secure=True).text

    form = re.search(
        rf'<form method="post" action="{re.escape(end_sessions_url(user))}">(.*?)</form>', page, re.S
    )
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(1)
    assert "Sign out of all sessions" in form.group(1)


def test_a_user_without_sessions_shows_none(admin_client, user):
    response = admin_client.get(change_url(user), secure=True)

    assert response.status_code == 200
    assert "No active sessions." in response.text


def test_the_add_page_has_no_sessions(admin_client):
    response = admin_client.get(reverse("admin:accounts_user_add"), secure=True)

    assert response.status_code == 200
    assert "Active sessions" not in response.text
    assert "Sign out of all sessions" not in response.text


def test_the_button_signs_the_user_out_everywhere_and_logs_it(admin_client, user, signed_in, redis):
    clients, ids = signed_in

    response = admin_client.post(end_sessions_url(user), secure=True)

    assert response.status_code == 302
    assert response["Location"] == change_url(user)
    assert not any(session_exists(redis, session_id) for session_id in ids)
    assert index_entries(redis, user.pk) == {}
    assert not any(is_logged_in(c) for c in clients)
    entry = LogEntry.objects.get(object_id=str(user.pk))
    assert entry.action_flag == CHANGE
    assert entry.user.username == "root"
    assert entry.get_change_message() == "Signed out of all sessions (2 ended)."
    page = admin_client.get(change_url(user), secure=True).text
    assert "2 sessions ended." in page
    assert "No active sessions." in page
    # The administrator's own session is untouched.
    assert admin_client.get("/admin/", secure=True).status_code == 200


def test_the_button_leaves_other_users_alone(admin_client, user, password, signed_in, redis):
    other = UserFactory(password=password)
    other_client = browser()
    other_id = log_in(other_client, other, password)

    admin_client.post(end_sessions_url(user), secure=True)

    assert session_exists(redis, other_id)
    assert is_logged_in(other_client)
    assert not LogEntry.objects.filter(object_id=str(other.pk)).exists()


def test_the_button_url_ends_nothing_on_get(admin_client, user, signed_in, redis):
    clients, ids = signed_in

    response = admin_client.get(end_sessions_url(user), secure=True)

    assert response.status_code == 302
    assert response["Location"] == change_url(user)
    assert all(session_exists(redis, session_id) for session_id in ids)
    assert not LogEntry.objects.exists()


def test_the_button_needs_a_csrf_token(password, user, signed_in, redis):
    User.objects.create_superuser("root", "root@example.com", password)
    admin = browser(enforce_csrf_checks=True, HTTP_REFERER="https://testserver/admin/")
    admin.force_login(User.objects.get(username="root"))

    response = admin.post(end_sessions_url(user), secure=True)

    assert response.status_code == 403
    assert all(session_exists(redis, session_id) for session_id in signed_in[1])


def test_the_button_of_an_unknown_user_is_a_404(admin_client, redis):
    for user_id in ("999999", "not-a-number"):
        response = admin_client.post(f"/admin/accounts/user/{user_id}/end-sessions/", secure=True)
        assert response.status_code == 404
    assert not LogEntry.objects.exists()


def test_the_button_needs_the_change_permission(user, password, signed_in, redis):
    viewer = UserFactory(password=password, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = browser()
    log_in(client, viewer, password)
    assert client.get(change_url(user), secure=True).status_code == 200

    response = client.post(end_sessions_url(user), secure=True)

    assert response.status_code == 403
    assert all(session_exists(redis, session_id) for session_id in signed_in[1])
    assert not LogEntry.objects.exists()


def test_the_admin_is_only_for_staff(user, password, signed_in, redis):
    client = signed_in[0][0]  # the user themselves, not staff

    response = client.post(end_sessions_url(user), secure=True)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert all(session_exists(redis, session_id) for session_id in signed_in[1])


def test_the_bulk_action_signs_out_every_selected_user(admin_client, user, password, signed_in, redis):
    second = UserFactory(password=password)
    second_client = browser(CHROME_WINDOWS, "198.51.100.9")
    log_in(second_client, second, password)
    bystander = UserFactory(password=password)
    bystander_client = browser()
    bystander_id = log_in(bystander_client, bystander, password)

    response = admin_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "end_all_sessions", "_selected_action": [user.pk, second.pk]},
        secure=True,
    )

    assert response.status_code == 302
    assert not any(is_logged_in(c) for c in [*signed_in[0], second_client])
    assert index_entries(redis, user.pk) == index_entries(redis, second.pk) == {}
    assert session_exists(redis, bystander_id)
    assert is_logged_in(bystander_client)
    messages = {
        entry.object_id: entry.get_change_message()
        for entry in LogEntry.objects.filter(action_flag=CHANGE)
    }
    assert messages == {
        str(user.pk): "Signed out of all sessions (2 ended).",
        str(second.pk): "Signed out of all sessions (1 ended).",
    }
    changelist = admin_client.get(response["Location"], secure=True).text
    assert "3 sessions ended." in changelist


def test_the_bulk_action_is_offered_on_the_changelist(admin_client, user):
    page = admin_client.get(reverse("admin:accounts_user_changelist"), secure=True).text

    assert '<option value="end_all_sessions">Sign out of all sessions</option>' in page


def test_the_bulk_action_needs_the_change_permission(user, password, signed_in, redis):
    viewer = UserFactory(password=password, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = browser()
    log_in(client, viewer, password)

    client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "end_all_sessions", "_selected_action": [user.pk]},
        secure=True,
    )

    assert all(session_exists(redis, session_id) for session_id in signed_in[1])
    assert not LogEntry.objects.exists()


def test_the_admin_password_change_keeps_the_sessions_browser_and_ip(admin_client, password, redis):
    new_password = "a whole new passphrase 42"

    response = admin_client.post(
        "/admin/password_change/",
        {"old_password": password, "new_password1": new_password, "new_password2": new_password},
        secure=True,
    )
    assert response.status_code == 302

    new_id = response.cookies[COOKIE].value
    session = stored(redis, new_id)
    assert session.user_agent == "curl/8.5.0"
    assert session.ip == "192.0.2.1"
