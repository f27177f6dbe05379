"""Fixtures of the accounts tests."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from sessiondemo.testing.web import browser, log_in


@pytest.fixture
def admin_client(password):
    """A superuser, logged in to the admin."""
    root = User.objects.create_superuser("root", "root@example.com", password)
    client = browser(ip="192.0.2.1")
    log_in(client, root, password)
    return client


@pytest.fixture
def migrator(transactional_db):
    """Migrate the accounts app to a given migration; back to the latest ones afterwards."""
    executor = MigrationExecutor(connection)

    def migrate(name):
        executor.loader.build_graph()
        executor.migrate([("accounts", name)])
        executor.loader.build_graph()
        return executor.loader.project_state([("accounts", name)]).apps

    yield migrate
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
