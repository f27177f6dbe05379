"""
A password reset link must not mint sessions: the token rides in a short-lived signed
cookie bound to the link, never in a Redis session, and link visits are throttled per IP.
"""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from accounts.tests.factories import UserFactory
from sessiondemo.testing.tasks import wait_for_tasks
from sessiondemo.testing.web import (
    index_entries,
    NEW_PASSWORD,
    browser,
    is_logged_in,
    log_in,
    session_exists,
    session_keys,
)

pytestmark = pytest.mark.django_db

SESSION_COOKIE = settings.SESSION_COOKIE_NAME
RESET_COOKIE = "__Host-password-reset"
LINK_RE = re.compile(r"https://testserver(/accounts/reset/([^/\s]+)/[^/\s]+/)")


def reset_link(user):
    """Ask for a reset of ``user``'s password; return the path of the link mailed to them."""
    mail.outbox.clear()
    response = browser().post("/accounts/password_reset/", {"email": user.email}, secure=True)
    assert response.status_code == 302
    wait_for_tasks()
    (message,) = mail.outbox
    return LINK_RE.search(message.body).group(1)


def set_password_url(link):
    return re.sub(r"/[^/]+/$", "/set-password/", link)


def test_cookie_less_visits_of_a_reset_link_store_nothing_in_redis(user, redis):
    link = reset_link(user)

    answers = [browser(ip=f"10.2.{n // 200}.{n % 200}").get(link, secure=True) for n in range(50)]

    for answer in answers:
        assert answer.status_code == 302
        assert answer["Location"] == set_password_url(link)
        assert SESSION_COOKIE not in answer.cookies
    assert session_keys(redis) == []
    # What is left are the per-IP counters of the link throttle, each expiring by itself.
    for key in redis.scan_iter("*"):
        assert key.startswith(b"sd:t:")
        assert 0 < redis.ttl(key) <= settings.ACCOUNTS_THROTTLE_WINDOW


def test_the_reset_works_in_one_browser_and_ends_every_old_session(user, password, redis):
    laptop, phone = browser(), browser(ip="192.0.2.44")
    old = [log_in(laptop, user, password), log_in(phone, user, password)]
    link = reset_link(user)
    reset_browser = browser()

    followed = reset_browser.get(link, secure=True)

    assert followed.status_code == 302
    cookie = followed.cookies[RESET_COOKIE]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""
    assert 0 < int(cookie["max-age"]) <= 3600

    form = reset_browser.get(followed["Location"], secure=True)
    assert form.status_code == 200
    assert "Choose a new password" in form.text
    done = reset_browser.post(
        followed["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, secure=True
    )

    assert done.status_code == 302
    assert done["Location"] == "/accounts/reset/done/"
    deleted = done.cookies[RESET_COOKIE]
    assert deleted.value == ""
    assert deleted["max-age"] == 0
    assert deleted["secure"] is True and deleted["httponly"] is True and deleted["samesite"] == "Lax"
    assert not any(session_exists(redis, session_id) for session_id in old)
    assert index_entries(redis, user.pk) == {}
    assert not is_logged_in(laptop) and not is_logged_in(phone)
    log_in(browser(), user, NEW_PASSWORD)


def test_another_browser_cannot_use_the_set_password_url(user, password):
    link = reset_link(user)
    browser().get(link, secure=True)  # the owner follows the link
    stranger = browser()

    page = stranger.get(set_password_url(link), secure=True)
    post = stranger.post(
        set_password_url(link), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, secure=True
    )

    assert page.status_code == post.status_code == 200
    assert "This link does not work" in page.text and "This link does not work" in post.text
    user.refresh_from_db()
    assert user.check_password(password)


def test_the_cookie_of_one_link_does_not_open_another_accounts_form(user, password):
    victim = UserFactory(password=password)
    attacker_link, victim_link = reset_link(user), reset_link(victim)
    attacker = browser()
    attacker.get(attacker_link, secure=True)  # a cookie for the attacker's own account

    post = attacker.post(
        set_password_url(victim_link), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, secure=True
    )

    assert post.status_code == 200
    assert "This link does not work" in post.text
    victim.refresh_from_db()
    assert victim.check_password(password)


def test_a_forged_reset_cookie_opens_nothing(user, password):
    link = reset_link(user)
    uidb64, token = link.strip("/").split("/")[-2:]
    forger = Client()
    forger.cookies[RESET_COOKIE] = f"{uidb64}:{token}"  # the right token, unsigned

    post = forger.post(
        set_password_url(link), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, secure=True
    )

    assert post.status_code == 200
    assert "This link does not work" in post.text
    user.refresh_from_db()
    assert user.check_password(password)


def test_reset_link_visits_are_throttled_per_ip(user, settings):
    settings.ACCOUNTS_PASSWORD_RESET_LINKS_PER_IP = 5
    link = reset_link(user)
    guesser = browser(ip="203.0.113.77")
    guesses = [link] * 3 + [re.sub(r"/[^/]+/$", f"/guess-{n}/", link) for n in range(7)]

    answers = [guesser.get(path, secure=True) for path in guesses]

    assert [a.status_code for a in answers] == [302, 302, 302, 200, 200] + [429] * 5
    assert all(int(a["Retry-After"]) > 0 for a in answers[5:])
    assert browser(ip="198.51.100.77").get(link, secure=True).status_code == 302
