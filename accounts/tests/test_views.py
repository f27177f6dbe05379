import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from profiles.models import Profile
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.web import (
    index_entries,
    NEW_PASSWORD,
    change_password,
    file_long_ago,
    log_in,
    redis_key,
    session_exists,
    session_keys,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


def test_signup_creates_a_user_with_a_profile_and_sends_them_to_log_in(client, redis):
    response = client.post(
        "/accounts/signup/",
        {"username": "carol", "email": "carol@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        secure=True,
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    carol = User.objects.get(username="carol")
    assert carol.check_password(NEW_PASSWORD)
    assert Profile.objects.filter(user=carol).exists()
    assert session_keys(redis) == []  # signing up does not log in


def test_signup_form_errors_say_what_is_wrong(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "dave", "password1": "password", "password2": "different"},
        secure=True,
    )

    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.text
    assert not User.objects.filter(username="dave").exists()


def test_wrong_password_is_a_form_error_and_stores_nothing(client, user, redis):
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": "wrong"}, secure=True
    )

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text
    assert COOKIE not in response.cookies
    assert session_keys(redis) == []


def test_password_change_keeps_this_session_under_a_new_id_and_ends_the_others(user, password, redis):
    here, laptop, phone = Client(), Client(), Client()
    old_here = log_in(here, user, password)
    laptop_id = log_in(laptop, user, password)
    phone_id = log_in(phone, user, password)

    response = change_password(here, password, NEW_PASSWORD)

    assert response.status_code == 302
    new_here = response.cookies[COOKIE].value
    assert new_here != old_here
    assert not session_exists(redis, old_here)
    assert session_exists(redis, new_here)
    # Deleted from Redis now, not at their next request.
    assert not session_exists(redis, laptop_id)
    assert not session_exists(redis, phone_id)
    # The old id's entry waits for a reader to find it gone; it lists nothing.
    assert [info.name for info in SessionStore.user_sessions(user.pk)] == [session_name(new_here)]
    assert session_name(laptop_id) not in index_entries(redis, user.pk)
    assert here.get("/profile/", secure=True).status_code == 200
    assert laptop.get("/profile/", secure=True).status_code == 302
    assert phone.get("/profile/", secure=True).status_code == 302


def test_a_second_password_change_in_the_same_session_keeps_it_too(user, password, redis):
    # The first change left the login's id behind, recording where the session
    # went: ending the others must not follow that record into this session.
    here, laptop = Client(), Client()
    first_id = log_in(here, user, password)
    second_id = change_password(here, password, NEW_PASSWORD).cookies[COOKIE].value
    laptop_id = log_in(laptop, user, NEW_PASSWORD)

    response = change_password(here, NEW_PASSWORD, password)

    assert response.status_code == 302
    third_id = response.cookies[COOKIE].value
    assert session_exists(redis, third_id)
    assert not any(session_exists(redis, key) for key in (first_id, second_id, laptop_id))
    assert here.get("/profile/", secure=True).status_code == 200
    assert laptop.get("/profile/", secure=True).status_code == 302


def test_password_change_with_a_wrong_current_password_changes_nothing(client, user, password, redis):
    session_id = log_in(client, user, password)

    response = change_password(client, "not it", NEW_PASSWORD)

    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.text
    user.refresh_from_db()
    assert user.check_password(password)
    assert session_exists(redis, session_id)


def test_password_change_needs_a_login(client):
    response = client.get("/accounts/password_change/", secure=True)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/password_change/"


def test_forms_need_a_csrf_token(user, password):
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    )

    assert response.status_code == 403


def test_a_superuser_logs_in_and_out_of_the_admin(redis, password):
    admin = User.objects.create_superuser("root", "root@example.com", password)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": password}, secure=True
    )
    assert response.status_code == 302
    session_id = response.cookies[COOKIE].value
    assert session_exists(redis, session_id)

    assert client.get("/admin/", secure=True).status_code == 200
    assert client.get(f"/admin/accounts/user/{admin.pk}/change/", secure=True).status_code == 200
    assert client.post("/admin/logout/", secure=True).status_code == 302

    assert not session_exists(redis, session_id)
    assert client.get("/admin/", secure=True).status_code == 302


def test_clearsessions_prunes_the_index_of_ended_sessions(user, password, redis, capsys):
    ended = log_in(Client(), user, password)
    kept = log_in(Client(), user, password)
    redis.delete(redis_key(ended))  # as if it had expired
    file_long_ago(redis, user)

    call_command("clearsessions", verbosity=1)

    assert list(index_entries(redis, user.pk)) == [session_name(kept)]
    assert "pruned 1 " in capsys.readouterr().out
    call_command("clearsessions", verbosity=1)
    assert "pruned 0 " in capsys.readouterr().out
