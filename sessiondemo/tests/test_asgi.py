"""The same session workflow through Django's ASGI handler."""

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import AsyncClient

from sessiondemo.testing.web import session_exists

pytestmark = pytest.mark.django_db(transaction=True)

COOKIE = settings.SESSION_COOKIE_NAME


def test_login_profile_and_logout_over_asgi(user, password, redis):
    # No async test runner here: the coroutine runs to completion on its own loop.
    async_to_sync(asgi_flow)(user, password, redis)


async def asgi_flow(user, password, redis):
    client = AsyncClient()

    response = await client.post(
        "/accounts/login/", {"username": user.username, "password": password}, secure=True
    )
    assert response.status_code == 302
    session_id = response.cookies[COOKIE].value
    assert session_exists(redis, session_id)

    response = await client.get("/profile/", secure=True)
    assert response.status_code == 200
    assert user.username in response.content.decode()

    response = await client.post("/accounts/logout/", secure=True)
    assert response.status_code == 302
    assert not session_exists(redis, session_id)
    assert (await client.get("/profile/", secure=True)).status_code == 302
