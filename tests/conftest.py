"""Fixtures: real PostgreSQL databases, a real registry, real ocicat processes."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import psycopg2
import pytest
import requests

from ocicat.db import Database
from ocicat.migrate import migrate

from .support import Ocicat, Registry, free_port, python_env, wait_http

# The server every test database is created on; trust auth on loopback here.
SERVER_URL = os.environ.get("OCICAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CATALOG_TABLES = "repositories, manifests, layers, index_children, tags, helm_charts, event_queue, processed_events, dead_letters"


def _admin(sql: str) -> None:
    conn = psycopg2.connect(SERVER_URL)
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def make_database():
    """Factory for fresh, migrated databases, all dropped when the session ends."""
    created = []

    def make() -> str:
        name = f"ocicat_test_{uuid.uuid4().hex[:12]}"
        _admin(f"CREATE DATABASE {name}")
        created.append(name)
        url = SERVER_URL.rsplit("/", 1)[0] + f"/{name}"
        migrate(url)
        return url

    yield make
    for name in created:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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


@dataclass
class Stack:
    registry: Registry
    api: str
    secret: str
    db: Database
    env: dict
    server: Ocicat

    def post_events(self, body: bytes, secret: str | None = None, **headers) -> requests.Response:
        headers.setdefault("Content-Type", "application/vnd.docker.distribution.events.v1+json")
        headers["Authorization"] = f"Bearer {self.secret if secret is None else secret}"
        return requests.post(f"{self.api}/api/v1/events", data=body, headers=headers, timeout=10)

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(f"{self.api}{path}", params=params, timeout=10)

    def tags(self, repository: str) -> dict[str, dict]:
        """The repository's tags by name, as the API shows them ({} while it is unknown)."""
        response = self.get(f"/api/v1/repositories/{repository}/-/tags", limit=200)
        return {t["name"]: t for t in response.json()["items"]} if response.status_code == 200 else {}


def start_stack(make_database, log_dir, command: str = "serve", **settings) -> Stack:
    """``ocicat serve`` (or ``command``: ``api`` for the receiver alone) with a real registry notifying it,
    configured by ``settings`` (OCICAT_* names)."""
    port = free_port()
    secret = "test-" + uuid.uuid4().hex
    registry = Registry(notify_url=f"http://127.0.0.1:{port}/api/v1/events", secret=secret).start()
    url = make_database()
    env = python_env(**{
        "OCICAT_DATABASE_URL": url,
        "OCICAT_LISTEN": f"127.0.0.1:{port}",
        "OCICAT_REGISTRY_URL": registry.url,
        "OCICAT_WEBHOOK_SECRETS": f"old-secret,{secret}",
        "OCICAT_API_WORKERS": 1,
        "OCICAT_MAX_ATTEMPTS": 3,
        **settings,
    })
    server = Ocicat(command, env, log_dir / "ocicat.log").start()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
    except AssertionError:
        server.stop()
        registry.close()
        raise AssertionError(f"ocicat {command} did not start:\n" + server.output())
    return Stack(registry=registry, api=f"http://127.0.0.1:{port}", secret=secret, db=Database(url, maxconn=4),
                 env=env, server=server)


def stop_stack(stack: Stack) -> None:
    stack.db.close()
    stack.server.stop()
    stack.registry.close()


@pytest.fixture(scope="session")
def stack(make_database, tmp_path_factory):
    """What a user runs: ``ocicat serve`` with a real registry notifying it, the catalog public."""
    running = start_stack(make_database, tmp_path_factory.mktemp("serve"), OCICAT_DEFAULT_VISIBILITY="public")
    yield running
    stop_stack(running)
