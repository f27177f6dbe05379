"""
Attacks on the account flows, each replayed as the attacker would: what they sent, and
what they could observe (status codes, cookies, Redis, mail sent).
"""

import threading

import pytest
from django.core import mail

from accounts.models import User
from sessiondemo.testing.mail import GatedEmailBackend
from sessiondemo.testing.tasks import wait_for_tasks
from sessiondemo.testing.web import NEW_PASSWORD, browser

pytestmark = pytest.mark.django_db

RESET = "/accounts/password_reset/"
SIGNUP = "/accounts/signup/"


@pytest.fixture
def mail_gate(settings):
    """Hold every mail the site sends until the test sets the returned event."""
    GatedEmailBackend.gate = threading.Event()
    settings.MAILERS = {"default": {"BACKEND": "sessiondemo.testing.mail.GatedEmailBackend"}}
    yield GatedEmailBackend.gate
    GatedEmailBackend.gate.set()


# -- Enumeration: how long a reset takes, and sign-up's "taken" ---------------------------


def test_the_reset_request_is_answered_before_its_mail_is_sent(user, mail_gate):
    response = browser().post(RESET, {"email": user.email}, secure=True)

    # The answer arrived while the mail was still held at the gate: its cost is
    # not in the request, so a known address answers as fast as an unknown one.
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    assert mail.outbox == []

    mail_gate.set()
    wait_for_tasks()

    assert [message.to for message in mail.outbox] == [[user.email]]


def test_signup_probes_from_one_address_are_throttled(user, settings):
    settings.ACCOUNTS_SIGNUPS_PER_IP = 5
    prober = browser(ip="203.0.113.9")
    names = [f"probe{n}" for n in range(30)]
    names[20] = user.username

    answers = [prober.post(SIGNUP, {"username": name}, secure=True) for name in names]

    assert [a.status_code for a in answers] == [200] * 5 + [429] * 25
    assert all(int(a["Retry-After"]) > 0 for a in answers[5:])
    assert "already exists" not in answers[20].text
    # Another client is still answered, "taken" included.
    other = browser(ip="198.51.100.20").post(SIGNUP, {"username": user.username}, secure=True)
    assert other.status_code == 200
    assert "A user with that username already exists." in other.text


def test_a_throttled_signup_creates_no_account(settings):
    settings.ACCOUNTS_SIGNUPS_PER_IP = 1
    client = browser()
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    first = client.post(SIGNUP, {"username": "first", **form}, secure=True)
    second = client.post(SIGNUP, {"username": "second", **form}, secure=True)

    assert first.status_code == 302
    assert second.status_code == 429
    assert list(User.objects.values_list("username", flat=True)) == ["first"]
