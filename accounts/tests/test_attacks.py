"""
Attacks on the account flows, each replayed as the attacker would: what they sent, and
what they could observe (status codes, cookies, Redis, mail sent).
"""

import re
import threading

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.test import Client

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


# -- Reset links follow the Host header ------------------------------------------------


@pytest.mark.parametrize(("host", "secure"), [("localhost:1337", True), ("127.0.0.1", False)])
def test_a_reset_link_points_at_the_site_whatever_host_the_request_named(user, host, secure):
    # ALLOWED_HOSTS checks the name only: localhost:1337 passes it.
    response = browser().post(RESET, {"email": user.email}, secure=secure, HTTP_HOST=host)
    wait_for_tasks()

    assert response.status_code == 302
    (message,) = mail.outbox
    links = re.findall(r"\w+://\S+", message.body)
    assert links
    assert all(link.startswith("https://testserver/accounts/reset/") for link in links)
    assert host not in message.body


def test_the_https_redirect_goes_to_the_site_whatever_host_the_request_named(settings):
    settings.SECURE_SSL_REDIRECT = True

    response = Client().get("/accounts/login/?next=/profile/", HTTP_HOST="localhost:1337")

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/?next=/profile/"


@pytest.mark.parametrize(
    "site_url",
    [
        "",
        "http://testserver",
        "https://sessions.example.com",
        "https://testserver/app/",
        "https://testserver?next=x",
        "https://admin@testserver",
        "testserver",
        "https://testserver:notaport",
    ],
)
def test_the_deploy_checks_refuse_a_missing_or_wrong_site_url(settings, site_url):
    settings.SITE_URL = site_url

    messages = run_checks(include_deployment_checks=True)

    assert "sessiondemo.W010" in {m.id for m in messages}


def test_the_deploy_checks_accept_the_sites_https_url(settings):
    settings.SITE_URL = "https://testserver"

    messages = run_checks(include_deployment_checks=True)

    assert "sessiondemo.W010" not in {m.id for m in messages}
