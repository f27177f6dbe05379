"""
Attacks on the account flows, each replayed as the attacker would: what they sent, and
what they could observe (status codes, cookies, Redis, mail sent).
"""

import re
import threading

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import pre_save
from django.test import Client

from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import admin_change
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


def test_signup_probes_from_one_ip_are_throttled(user, settings):
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


# -- Reset mail on tap -------------------------------------------------------------------


def test_reset_requests_from_one_ip_are_throttled(user, settings):
    settings.ACCOUNTS_PASSWORD_RESETS_PER_IP = 3
    client = browser(ip="203.0.113.50")

    answers = [client.post(RESET, {"email": f"someone{n}@example.com"}, secure=True) for n in range(10)]

    assert [a.status_code for a in answers] == [302] * 3 + [429] * 7
    assert all(int(a["Retry-After"]) > 0 for a in answers[3:])
    # Another client is still served.
    assert browser(ip="198.51.100.50").post(RESET, {"email": user.email}, secure=True).status_code == 302


def test_a_flood_of_reset_requests_for_one_address_sends_one_mail(user):
    spellings = [user.email, user.email.upper(), user.email.title()]

    answers = [
        browser(ip=f"10.1.{n // 200}.{n % 200}").post(RESET, {"email": spellings[n % 3]}, secure=True)
        for n in range(100)
    ]
    unknown = browser(ip="10.9.9.9").post(RESET, {"email": "nobody@example.com"}, secure=True)
    wait_for_tasks()

    assert [message.to for message in mail.outbox] == [[user.email]]
    # Every answer, the throttled ones included, is the one an unknown address gets.
    for answer in [*answers, unknown]:
        assert (answer.status_code, answer["Location"]) == (302, "/accounts/password_reset/done/")
        assert answer.content == unknown.content


@pytest.mark.parametrize(
    ("taken", "again"),
    [
        ("carol@example.com", "CAROL@Example.com"),
        ("emile@bücher.example", "Emile@BÜCHER.example"),  # SQLite folds ASCII only
        ("ada@example.com", " ada@ｅｘａｍｐｌｅ.com "),  # fullwidth, and spaces
    ],
)
def test_signup_refuses_an_address_another_account_uses_in_any_spelling(taken, again):
    UserFactory(email=taken)

    response = browser().post(
        SIGNUP,
        {"username": "newcomer", "email": again, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        secure=True,
    )

    assert response.status_code == 200
    assert "An account already uses this e-mail address." in response.text
    assert not User.objects.filter(username="newcomer").exists()


def test_the_database_refuses_a_second_account_with_the_same_address(user):
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(email=user.email.upper())

    assert User.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("newcomer", "rival", "error"),
    [
        ({"username": "newcomer", "email": "Shared@example.com"}, {"username": "rival", "email": "shared@example.com"}, "An account already uses this e-mail address."),
        ({"username": "Émile", "email": ""}, {"username": "émile", "email": ""}, "A user with that username already exists."),
    ],
    ids=["address", "username"],
)
def test_a_signup_that_loses_a_race_gets_a_form_error(newcomer, rival, error):
    saving, rival_committed = threading.Event(), threading.Event()
    answers = []

    def wait_for_the_rival(sender, instance, **kwargs):
        # The form has checked the name and address; the rival commits before this save.
        if instance.username == newcomer["username"]:
            saving.set()
            assert rival_committed.wait(10)

    def sign_up():
        try:
            form = {**newcomer, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
            answers.append(browser().post(SIGNUP, form, secure=True))
        finally:
            connection.close()

    pre_save.connect(wait_for_the_rival, sender=User)
    try:
        thread = threading.Thread(target=sign_up)
        thread.start()
        assert saving.wait(10)
        UserFactory(**rival)
        rival_committed.set()
        thread.join(10)
    finally:
        pre_save.disconnect(wait_for_the_rival, sender=User)

    (response,) = answers
    assert response.status_code == 200
    assert error in response.text
    assert list(User.objects.values_list("username", flat=True)) == [rival["username"]]


def test_the_admin_refuses_an_address_another_account_uses(admin_client, user):
    other = UserFactory()

    response = admin_change(admin_client, other, email=user.email.upper())

    assert response.status_code == 200
    assert "An account already uses this e-mail address." in response.text
    other.refresh_from_db()
    assert other.email != user.email.upper()


def test_the_migration_leaves_each_address_to_its_first_account(migrator, capsys):
    old = migrator("0001_initial")
    OldUser = old.get_model("accounts", "User")
    for name, email in [
        ("first", "shared@example.com"),
        ("second", "SHARED@example.com"),
        ("third", "shared@EXAMPLE.COM"),
        ("alone", "alone@example.com"),
        ("none", ""),
        ("nobody", ""),
    ]:
        OldUser.objects.create(username=name, email=email, password="!")

    NewUser = migrator("0002_user_email_canonical").get_model("accounts", "User")

    emails = dict(NewUser.objects.values_list("username", "email"))
    assert emails == {
        "first": "shared@example.com",
        "second": "",
        "third": "",
        "alone": "alone@example.com",
        "none": "",
        "nobody": "",
    }
    canonical = dict(NewUser.objects.values_list("username", "email_canonical"))
    assert canonical["first"] == "shared@example.com"
    assert canonical["alone"] == "alone@example.com"
    assert canonical["second"] is canonical["none"] is None
    printed = capsys.readouterr().out
    second, third = (NewUser.objects.get(username=n).pk for n in ("second", "third"))
    assert f"user {second}: e-mail address cleared" in printed
    assert f"user {third}: e-mail address cleared" in printed
    assert "shared@" not in printed.lower()
