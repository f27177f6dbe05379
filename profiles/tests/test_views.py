import pytest
from django.conf import settings

from profiles.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user, password):
    client.post("/accounts/login/", {"username": user.username, "password": password}, secure=True)
    return client


@pytest.mark.parametrize("path", ["/profile/", "/profile/edit/"])
def test_profile_pages_send_anonymous_visitors_to_log_in(client, path):
    response = client.get(path, secure=True)

    assert response.status_code == 302
    assert response["Location"] == f"{settings.LOGIN_URL}?next={path}"


def test_every_user_gets_a_profile(user):
    assert Profile.objects.get(user=user).display_name == ""


def test_profile_shows_the_user_and_a_logout_button(logged_in, user):
    response = logged_in.get("/profile/", secure=True)

    assert response.status_code == 200
    assert user.username in response.text
    assert 'action="/accounts/logout/"' in response.text
    assert "csrfmiddlewaretoken" in response.text


def test_editing_the_profile_saves_and_shows_it(logged_in, user):
    response = logged_in.post(
        "/profile/edit/", {"display_name": "Alice A.", "bio": "Likes <b>Redis</b>."}, secure=True
    )

    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    page = logged_in.get("/profile/", secure=True).text
    assert "Alice A." in page
    assert "Likes &lt;b&gt;Redis&lt;/b&gt;." in page
    assert Profile.objects.get(user=user).bio == "Likes <b>Redis</b>."


def test_a_too_long_display_name_is_a_form_error(logged_in):
    response = logged_in.post("/profile/edit/", {"display_name": "x" * 81, "bio": ""}, secure=True)

    assert response.status_code == 200
    assert "Ensure this value has at most 80 characters" in response.text
