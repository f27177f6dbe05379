"""
Look-alike usernames: one account per name however it is spelled (NFKC, case-folded), on
SQLite as on PostgreSQL, and no names that mix scripts ('аdmin' with a Cyrillic а).
"""

import pytest
from django.contrib.auth import get_user
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import admin_add, admin_change
from sessiondemo.testing.web import NEW_PASSWORD, browser, submit_login

pytestmark = pytest.mark.django_db

SIGNUP = "/accounts/signup/"
TAKEN = "A user with that username already exists."
MIXED = "Use letters of one script"

LOOK_ALIKES = [
    ("émile", "Émile"),  # SQLite's LIKE folds ASCII only
    ("Émile", "E\u0301MILE"),  # decomposed É
    ("ross", "roß"),  # case folding turns ß into ss
    ("alice", "ａｌｉｃｅ"),  # fullwidth
    ("ǆemal", "Ǆemal"),  # a digraph with three cases
]
MIXED_SCRIPTS = [
    "аdmin",  # Cyrillic а, Latin dmin
    "pаypal",
    "gοοgle",  # Greek omicrons
    "Ꭺlice",  # Cherokee A
    "john\u02cddoe",  # a modifier letter that looks like _
    "山田taro",
]
SINGLE_SCRIPTS = ["émile", "Дмитрий", "Ἀλέξανδρος", "山田たろう", "ヤマダたろう", "김철수", "洪吉童김", "ㄅㄆ王", "user_42"]


def sign_up(username, client=None):
    form = {"username": username, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    return (client or browser()).post(SIGNUP, form, secure=True)


@pytest.mark.parametrize(("taken", "again"), LOOK_ALIKES)
def test_signup_refuses_a_look_alike_of_a_taken_username(taken, again):
    UserFactory(username=taken)

    response = sign_up(again)

    assert response.status_code == 200
    assert TAKEN in response.text
    assert User.objects.count() == 1


@pytest.mark.parametrize("username", MIXED_SCRIPTS)
def test_signup_refuses_a_username_that_mixes_scripts(username):
    response = sign_up(username)

    assert response.status_code == 200
    assert MIXED in response.text
    assert not User.objects.exists()


@pytest.mark.parametrize("username", SINGLE_SCRIPTS)
def test_signup_accepts_a_username_in_one_writing_system(username):
    response = sign_up(username)

    assert response.status_code == 302
    assert User.objects.filter(username=username).exists()


@pytest.mark.parametrize(("taken", "again"), LOOK_ALIKES)
def test_the_database_refuses_a_look_alike(taken, again):
    UserFactory(username=taken)

    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(username=again, email="")  # no address in common


@pytest.mark.parametrize(("name", "typed"), [*LOOK_ALIKES, ("Émile", " émile ")])
def test_any_spelling_of_a_name_logs_in_to_the_one_account(name, typed, password):
    owner = UserFactory(username=name, password=password)
    client = browser()

    response = submit_login(client, owner.__class__(username=typed), password)

    assert response.status_code == 302
    assert get_user(client).pk == owner.pk
    assert User.objects.get_by_natural_key(typed).pk == owner.pk


def test_createsuperuser_refuses_a_look_alike_and_a_mixed_script_name():
    UserFactory(username="admin")

    for username in ("ＡＤＭＩＮ", "Admin", "аdmin"):
        with pytest.raises(CommandError):
            call_command("createsuperuser", username=username, email="", interactive=False, verbosity=0)
    assert list(User.objects.values_list("username", flat=True)) == ["admin"]


def test_the_admin_add_form_refuses_look_alikes_and_mixed_scripts(admin_client):
    UserFactory(username="émile")

    look_alike = admin_add(admin_client, "Émile", NEW_PASSWORD)
    mixed = admin_add(admin_client, "аdmin", NEW_PASSWORD)

    assert look_alike.status_code == mixed.status_code == 200
    assert TAKEN in look_alike.text
    assert MIXED in mixed.text
    assert sorted(User.objects.values_list("username", flat=True)) == ["root", "émile"]


def test_the_admin_change_form_refuses_look_alikes_and_mixed_scripts(admin_client):
    UserFactory(username="ross")
    other = UserFactory(username="carol")

    look_alike = admin_change(admin_client, other, username="roß")
    mixed = admin_change(admin_client, other, username="cаrol")

    assert look_alike.status_code == mixed.status_code == 200
    assert TAKEN in look_alike.text
    assert MIXED in mixed.text
    other.refresh_from_db()
    assert other.username == "carol"


def test_the_migration_renames_later_look_alikes_of_an_older_name(migrator, capsys):
    old = migrator("0002_user_email_canonical")
    OldUser = old.get_model("accounts", "User")
    for name in ["émile", "Émile", "ross", "roß", "alice"]:
        OldUser.objects.create(username=name, password="!")

    NewUser = migrator("0003_user_username_canonical").get_model("accounts", "User")

    ids = dict(NewUser.objects.values_list("username", "pk"))
    names = dict(NewUser.objects.values_list("pk", "username"))
    second, fourth = sorted(names)[1], sorted(names)[3]
    assert names[second] == f"Émile-{second}"
    assert names[fourth] == f"roß-{fourth}"
    assert {"émile", "ross", "alice"} <= set(ids)
    assert NewUser.objects.get_by_natural_key("ÉMILE").username == "émile"
    assert NewUser.objects.get_by_natural_key("ROSS").username == "ross"
    printed = capsys.readouterr().out
    assert f"user {second}: renamed to 'Émile-{second}'" in printed
    assert f"user {fourth}: renamed to 'roß-{fourth}'" in printed
