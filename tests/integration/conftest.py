"""Fixtures: real PostgreSQL databases, a real registry, real ocicat processes."""

from __future__ import annotations

import os
import uuid

import pytest

from harness.postgres import admin, database_url_on
from harness.registry import Registry
from ocicat.db import Database
from ocicat.migrate import migrate

from .pages import browser, open_page  # noqa: F401 - fixtures of the tests that look at pages
from .stack import start_stack, stop_stack

# The server every test database is created on: scripts/test.sh points this at the machine's server, or at a
# throwaway one it started when none answers on 127.0.0.1:5432.
SERVER_URL = os.environ.get("OCICAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CATALOG_TABLES = ("repositories, manifests, layers, index_children, tags, helm_charts, event_queue, processed_events, "
                  "dead_letters, catalog_events, chart_files, chart_sources")


@pytest.fixture(scope="session")
def make_database():
    """Factory for fresh, migrated databases, all dropped when the session ends."""
    created = []

    def make() -> str:
        name = f"ocicat_test_{uuid.uuid4().hex[:12]}"
        admin(SERVER_URL, f"CREATE DATABASE {name}")
        created.append(name)
        url = database_url_on(SERVER_URL, name)
        migrate(url)
        return url

    yield make
    for name in created:
        admin(SERVER_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def database_url(make_database) -> str:
    return make_database()


@pytest.fixture
def db(database_url):
    """An empty catalog for one in-process test."""
    database = Database(database_url, maxconn=8)
    with database.transaction() as cur:
        cur.execute(f"TRUNCATE {CATALOG_TABLES} RESTART IDENTITY CASCADE")
    yield database
    database.close()


@pytest.fixture(scope="session")
def registry():
    """A registry that notifies nobody: content for in-process tests."""
    reg = Registry().start()
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def stack(make_database, tmp_path_factory):
    """What a user runs: ``ocicat serve`` with a real registry notifying it, the catalog public."""
    running = start_stack(make_database, tmp_path_factory.mktemp("serve"), OCICAT_DEFAULT_VISIBILITY="public")
    yield running
    stop_stack(running)
