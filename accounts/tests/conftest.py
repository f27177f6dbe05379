"""Fixtures of the accounts tests."""

import pytest

from accounts.models import User
from sessiondemo.testing.web import browser, log_in


@pytest.fixture
def admin_client(password):
    """A superuser, logged in to the admin."""
    root = User.objects.create_superuser("root", "root@example.com", password)
    client = browser(ip="192.0.2.1")
    log_in(client, root, password)
    return client
