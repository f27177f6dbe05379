"""Helpers of the accounts tests: the admin's user forms, posted as a browser would."""

from django.urls import reverse


def admin_change(client, user, **fields):
    """Post the admin's change form of ``user`` with ``fields`` changed; return the response."""
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        **fields,
    }
    return client.post(reverse("admin:accounts_user_change", args=[user.pk]), data, secure=True)


def admin_add(client, username, password):
    """Post the admin's "add user" form; return the response."""
    data = {"username": username, "usable_password": "true", "password1": password, "password2": password}
    return client.post(reverse("admin:accounts_user_add"), data, secure=True)
