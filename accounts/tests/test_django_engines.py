"""
The site on Django's own session engines: every main flow works, nothing is a 500.

What only sessiondemo.sessions can do (list a user's sessions, end them at
once, end them by user from the admin or the shell) is said to be missing;
the rest falls back to Django's behaviour: a new password, or a deactivated
account, ends the other sessions at their next request.
"""

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.test_password_reset import request_reset, reset_link, set_password
from sessiondemo.testing.web import (
    NEW_PASSWORD,
    admin_browser,
    browser,
    change_password,
    is_logged_in,
    log_in_response,
)

pytestmark = pytest.mark.django_db

ENGINES = {
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
    # On the "sessions" alias: django-redis, JSON, the suite's Redis.
    "cache": "django.contrib.sessions.backends.cache",
}
CANNOT_LIST = "This site's session store cannot list your sessions"
CANNOT_END = "This site&#x27;s session store cannot sign out other sessions from here."
ADMIN_CANNOT_LIST = "The session store cannot list sessions."
ADMIN_CANNOT_END = "The session store cannot end sessions by user"


@pytest.fixture(params=ENGINES.values(), ids=ENGINES.keys(), autouse=True)
def django_engine(request, settings, redis):
    settings.SESSION_ENGINE = request.param
    return request.param


def logged_in_browser(user, password, *args):
    client = browser(*args)
    response = log_in_response(client, user, password)
    assert response["Location"] == "/profile/"
    assert is_logged_in(client)
    return client


def test_sign_up_log_in_edit_the_profile_and_log_out(redis):
    visitor = browser()
    signup = visitor.post(
        "/accounts/signup/",
        {"username": "carol", "email": "carol@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        secure=True,
    )
    assert signup.status_code == 302 and signup["Location"] == "/accounts/login/"
    carol = User.objects.get(username="carol")

    log_in_response(visitor, carol, NEW_PASSWORD)
    profile = visitor.get("/profile/", secure=True)
    assert profile.status_code == 200 and "carol" in profile.text
    edit = visitor.post("/profile/edit/", {"display_name": "Carol C.", "bio": "Hi"}, secure=True)
    assert edit.status_code == 302
    assert "Carol C." in visitor.get("/profile/", secure=True).text

    logout = visitor.post("/accounts/logout/", secure=True)
    assert logout.status_code == 302
    assert not is_logged_in(visitor)


def test_logging_in_again_and_again_gives_back_each_attempt(user, password, settings):
    client = browser()

    # More logins than failures lock an account: each right password gives its attempt back.
    for _ in range(settings.ACCOUNTS_LOGIN_FAILURES_PER_ACCOUNT + 1):
        log_in_response(client, user, password)

    assert is_logged_in(client)


def test_a_password_change_keeps_this_browser_and_ends_the_others_at_their_next_request(user, password):
    laptop = logged_in_browser(user, password)
    phone = logged_in_browser(user, password)

    response = change_password(laptop, password, NEW_PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/accounts/password_change/done/"
    assert laptop.get(response["Location"], secure=True).status_code == 200
    assert is_logged_in(laptop)
    assert not is_logged_in(phone)


def test_a_password_reset_sets_the_new_password_and_ends_the_sessions(user, password):
    laptop = logged_in_browser(user, password)
    elsewhere = browser()

    request_reset(elsewhere, user.email)
    response = set_password(elsewhere, reset_link(mail.outbox[0]))

    assert response.status_code == 302 and response["Location"] == "/accounts/reset/done/"
    assert elsewhere.get(response["Location"], secure=True).status_code == 200
    assert not is_logged_in(laptop)
    log_in_response(browser(), user, NEW_PASSWORD)


def test_your_sessions_says_the_store_cannot_list_them_and_ends_nothing(user, password):
    client = logged_in_browser(user, password)
    other = logged_in_browser(user, password)

    page = client.get("/accounts/sessions/", secure=True)

    assert page.status_code == 200
    assert CANNOT_LIST in page.text
    assert "Sign out all other sessions" not in page.text

    for action in ("/accounts/sessions/others/end/", f"/accounts/sessions/{'0' * 16}/end/"):
        response = client.post(action, secure=True)
        assert response.status_code == 302 and response["Location"] == "/accounts/sessions/"
        assert CANNOT_END in client.get("/accounts/sessions/", secure=True).text
    assert is_logged_in(other) and is_logged_in(client)


def test_the_admin_user_page_says_the_store_cannot_list_sessions(user, password):
    admin = admin_browser(password)
    signed_in = logged_in_browser(user, password)
    change = reverse("admin:accounts_user_change", args=[user.pk])

    page = admin.get(change, secure=True)

    assert page.status_code == 200
    assert ADMIN_CANNOT_LIST in page.text
    assert "Sign out of all sessions" not in page.text
    changelist = admin.get(reverse("admin:accounts_user_changelist"), secure=True)
    assert changelist.status_code == 200
    assert 'value="end_all_sessions"' not in changelist.text

    button = admin.post(reverse("admin:accounts_user_end_sessions", args=[user.pk]), secure=True)
    assert button.status_code == 302 and button["Location"] == change
    assert ADMIN_CANNOT_END in admin.get(change, secure=True).text
    assert is_logged_in(signed_in)


def test_deactivating_a_user_in_the_admin_ends_their_sessions_at_their_next_request(user, password):
    admin = admin_browser(password)
    signed_in = logged_in_browser(user, password)
    form = {
        "username": user.username,
        "email": user.email,
        "is_active": "",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2024-01-01",
        "initial-date_joined_1": "00:00:00",
    }

    response = admin.post(reverse("admin:accounts_user_change", args=[user.pk]), form, secure=True)

    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active
    assert not is_logged_in(signed_in)


def test_deleting_a_user_ends_their_sessions_at_their_next_request(password):
    doomed = UserFactory(password=password)
    client = logged_in_browser(doomed, password)

    doomed.delete()

    assert not is_logged_in(client)


def test_endsessions_says_it_needs_the_sites_engine(user, django_engine):
    for arguments in (["--user", user.username], ["--all"]):
        with pytest.raises(CommandError) as refused:
            call_command("endsessions", *arguments)
        assert "needs the session engine sessiondemo.sessions.backend" in str(refused.value)
        assert django_engine in str(refused.value)
