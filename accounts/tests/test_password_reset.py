"""Password reset by e-mail: the link works once, and a completed reset signs the account out everywhere."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from accounts.tests.factories import UserFactory
from sessiondemo.testing.tasks import wait_for_tasks
from sessiondemo.testing.web import NEW_PASSWORD, browser, index_entries, is_logged_in, log_in, session_exists

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
LINK_RE = re.compile(r"https://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)")


def request_reset(client, email):
    response = client.post("/accounts/password_reset/", {"email": email}, secure=True)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    wait_for_tasks()  # the mail is sent off the request path


def reset_link(message):
    return LINK_RE.search(message.body).group(1)


def set_password(client, link, new_password=NEW_PASSWORD):
    """Follow the e-mailed ``link`` and choose ``new_password``; return the final response."""
    response = client.get(link, secure=True)
    assert response.status_code == 302
    form_url = response["Location"]
    assert form_url.endswith("/set-password/")
    response = client.get(form_url, secure=True)
    assert response.status_code == 200
    assert "Choose a new password" in response.text
    return client.post(
        form_url, {"new_password1": new_password, "new_password2": new_password}, secure=True
    )


def test_a_completed_reset_signs_the_account_out_everywhere(user, password, redis):
    laptop, phone = browser(), browser("Mozilla/5.0 (iPhone) Safari/604.1", "192.0.2.44")
    ids = [log_in(laptop, user, password), log_in(phone, user, password)]
    elsewhere = browser(ip="198.51.100.7")

    request_reset(elsewhere, user.email)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    # The reset has not happened yet: nothing is signed out by asking for it.
    assert is_logged_in(laptop) and is_logged_in(phone)

    response = set_password(elsewhere, reset_link(mail.outbox[0]))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/reset/done/"
    assert not any(session_exists(redis, session_id) for session_id in ids)
    assert index_entries(redis, user.pk) == {}
    assert not is_logged_in(laptop)
    assert not is_logged_in(phone)
    done = elsewhere.get(response["Location"], secure=True)
    assert "Every session of your account has been signed out." in done.text
    # The new password works, the old one does not.
    assert browser().post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    ).status_code == 200
    log_in(browser(), user, NEW_PASSWORD)


def test_a_reset_leaves_other_accounts_signed_in(user, password, redis):
    other = UserFactory(password=password)
    other_client = browser()
    other_id = log_in(other_client, other, password)
    log_in(browser(), user, password)

    request_reset(Client(), user.email)
    set_password(Client(), reset_link(mail.outbox[0]))

    assert session_exists(redis, other_id)
    assert is_logged_in(other_client)


def test_a_reset_done_in_a_browser_signed_in_to_the_account_signs_it_out_too(user, password, redis):
    laptop, phone = browser(), browser(ip="192.0.2.44")
    laptop_id = log_in(laptop, user, password)
    log_in(phone, user, password)
    request_reset(laptop, user.email)

    response = set_password(laptop, reset_link(mail.outbox[0]))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/reset/done/"
    assert response.cookies[COOKIE].value == ""  # the browser is told to forget it
    assert not session_exists(redis, laptop_id)
    assert index_entries(redis, user.pk) == {}
    assert not is_logged_in(laptop)
    assert not is_logged_in(phone)
    assert laptop.get("/accounts/reset/done/", secure=True).status_code == 200


def test_the_link_works_once(user, password, redis):
    request_reset(Client(), user.email)
    link = reset_link(mail.outbox[0])
    assert set_password(Client(), link).status_code == 302
    session_id = log_in(browser(), user, NEW_PASSWORD)

    response = Client().get(link, secure=True, follow=True)

    assert response.status_code == 200
    assert "This link does not work" in response.text
    assert session_exists(redis, session_id)


def test_a_failed_reset_changes_and_ends_nothing(user, password, redis):
    laptop = browser()
    session_id = log_in(laptop, user, password)
    request_reset(Client(), user.email)

    response = set_password(Client(), reset_link(mail.outbox[0]), new_password="short")

    assert response.status_code == 200
    assert session_exists(redis, session_id)
    assert is_logged_in(laptop)
    user.refresh_from_db()
    assert user.check_password(password)


def test_an_unknown_address_sends_nothing_and_ends_nothing(user, password, redis):
    laptop = browser()
    session_id = log_in(laptop, user, password)

    request_reset(Client(), "nobody@example.com")

    assert mail.outbox == []
    assert session_exists(redis, session_id)
    assert is_logged_in(laptop)


def test_asking_for_a_reset_creates_no_session(user, redis):
    request_reset(Client(), user.email)

    assert list(redis.scan_iter(match="sd:s:*")) == []
