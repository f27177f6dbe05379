"""Fixtures of the accounts tests."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor



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
