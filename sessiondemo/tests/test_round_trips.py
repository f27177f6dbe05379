"""Redis round trips per request, counted on the site's own connections."""

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture
def logged_in(client, user, password):
    client.post("/accounts/login/", {"username": user.username, "password": password}, secure=True)
    assert COOKIE in client.cookies
    return client


def test_a_request_that_never_touches_the_session_costs_nothing(logged_in, round_trips):
    with round_trips() as log:
        response = logged_in.get("/no-such-page/", secure=True)

    assert response.status_code == 404
    assert len(log) == 0


def test_an_anonymous_page_costs_nothing(client, round_trips):
    with round_trips() as log:
        assert client.get("/", secure=True).status_code == 200
        assert client.get("/accounts/login/", secure=True).status_code == 200

    assert len(log) == 0


def test_a_logged_in_read_costs_one_round_trip(logged_in, round_trips):
    with round_trips() as log:
        response = logged_in.get("/profile/", secure=True)

    assert response.status_code == 200
    assert log.trips == [["GETEX", "PEXPIRETIME"]]


@pytest.mark.urls("sessiondemo.tests.urls")
def test_a_request_that_changes_the_session_costs_two(logged_in, round_trips):
    with round_trips() as log:
        response = logged_in.get("/test/remember/blue/", secure=True)

    assert response.status_code == 200
    assert len(log) == 2


def test_login_costs_at_most_three(client, user, password, round_trips):
    with round_trips() as log:
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": password}, secure=True
        )

    assert response.status_code == 302
    assert len(log) <= 3
    # Plain commands only: a script costs Redis several times as much.
    assert not {"EVALSHA", "EVAL"} & set(log.commands), log.trips


@pytest.mark.urls("sessiondemo.tests.urls")
def test_login_over_an_anonymous_session_costs_at_most_three(client, user, password, round_trips):
    client.get("/test/remember/blue/", secure=True)
    with round_trips() as log:
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": password}, secure=True
        )

    assert response.status_code == 302
    assert len(log) <= 3


def test_logout_costs_at_most_two(logged_in, round_trips):
    with round_trips() as log:
        response = logged_in.post("/accounts/logout/", secure=True)

    assert response.status_code == 302
    assert len(log) <= 2
