"""What a user runs, for tests: ``ocicat serve`` (or one of its commands) with a real registry notifying it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.processes import Ocicat, free_port, python_env, wait_http
from harness.registry import Registry
from ocicat import accounts
from ocicat.db import Database


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

    def get(self, path: str, headers: dict | None = None, **params) -> requests.Response:
        return requests.get(f"{self.api}{path}", params=params, headers=headers, timeout=10)

    def tags(self, repository: str, headers: dict | None = None) -> dict[str, dict]:
        """The repository's tags by name, as the API shows them (to the caller of ``headers``; {} while it is
        unknown)."""
        response = self.get(f"/api/v1/repositories/{repository}/-/tags", headers, limit=200)
        return {t["name"]: t for t in response.json()["items"]} if response.status_code == 200 else {}

    def user(self, roles: dict[str, str] | None = None, admin: bool = False) -> tuple[str, str]:
        """A new user with roles on paths (path: role), and an API token of theirs: (name, token)."""
        name = f"user-{uuid.uuid4().hex[:8]}"
        with self.db.transaction() as cur:
            accounts.create_user(cur, name, admin)
            for path, role in (roles or {}).items():
                accounts.grant(cur, name, path, role)
            _, token = accounts.create_token(cur, name)
        return name, token


def start_stack(make_database, log_dir: Path, command: str = "serve", port: int | None = None, **settings) -> Stack:
    """``ocicat serve`` (or ``command``: ``api`` for the receiver alone) with a real registry notifying it,
    configured by ``settings`` (OCICAT_* names), listening on ``port`` (a free one without)."""
    port = port or free_port()
    secret = "test-" + uuid.uuid4().hex
    registry = Registry(notify_url=f"http://127.0.0.1:{port}/api/v1/events", secret=secret).start()
    url = settings.get("OCICAT_DATABASE_URL") or make_database()
    env = python_env(**{
        "OCICAT_DATABASE_URL": url,
        "OCICAT_LISTEN": f"127.0.0.1:{port}",
        "OCICAT_REGISTRY_URL": registry.url,
        "OCICAT_WEBHOOK_SECRETS": f"old-secret,{secret}",
        "OCICAT_API_WORKERS": 1,
        # Few connections per stack (threads + 2): the PostgreSQL server's 100 are shared by every stack a run has
        # open, and by whatever else runs beside it (bench/api.py).
        "OCICAT_API_THREADS": 4,
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
