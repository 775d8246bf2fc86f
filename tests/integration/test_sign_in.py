"""Sign-in with a real OpenID Connect provider (harness.oidc: panva's oidc-provider on Node.js), against a running
``ocicat serve``: sessions, CSRF, personal tokens, roles from groups and their loss at the next check, and every
forgery of the ID token and the flow refused. The GitLab-shaped permissions are in test_permissions's table."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.oci import push_chart
from harness.oidc import CLIENT_ID, CLIENT_SECRET, Provider, interact, sign_in, start_sign_in
from harness.processes import free_port, wait_until

from .stack import start_stack, stop_stack

RUN = uuid.uuid4().hex[:6]
TEAM, OTHER = f"idteam{RUN}", f"idother{RUN}"
CHART, SECRET = f"{TEAM}/charts/site", f"{OTHER}/charts/vault"
# Generic provider (not GitLab): the administrator's rules map groups to roles.
RULES = [
    {"match": f"{TEAM}-readers", "path": TEAM, "role": "reporter"},
    {"match": "(?P<team>[a-z0-9]+)-developers", "path": "{team}", "role": "developer"},
    {"match": "ocicat-admins", "role": "admin"},
]
USERS = {
    "rita": {"preferred_username": "rita", "groups": [f"{TEAM}-readers"]},
    "dev": {"preferred_username": "dev", "groups": [f"{TEAM}-developers"]},
    "nobody": {"preferred_username": "nobody", "groups": ["unrelated"]},
    "boss": {"preferred_username": "boss", "groups": ["ocicat-admins"]},
}


@pytest.fixture(scope="module")
def signed(make_database, tmp_path_factory):
    logs = tmp_path_factory.mktemp("sign-in")
    port = free_port()
    provider = Provider(USERS, [f"http://127.0.0.1:{port}/auth/callback"], logs / "provider.log").start()
    stack = None
    try:
        stack = start_stack(make_database, logs, port=port, OCICAT_DEFAULT_VISIBILITY="private",
                            OCICAT_OIDC_ISSUER=provider.issuer, OCICAT_OIDC_CLIENT_ID=CLIENT_ID,
                            OCICAT_OIDC_CLIENT_SECRET=CLIENT_SECRET, OCICAT_OIDC_NAME="Test IdP",
                            OCICAT_OIDC_SCOPES="openid profile groups", OCICAT_OIDC_ROLE_RULES=json.dumps(RULES),
                            OCICAT_OIDC_REFRESH_SECONDS="1", OCICAT_SECRET_KEY="test-" + uuid.uuid4().hex)
        digests = {name: push_chart(stack.registry.url, name, "1.0.0", "1.0.0") for name in (CHART, SECRET)}
        _, admin_token = stack.user(admin=True)
        wait_until(lambda: {r["name"] for r in stack.get("/api/v1/repositories", {"Authorization": f"Bearer {admin_token}"}
                                                         ).json()["items"]} >= {CHART, SECRET}, what="the charts")
        yield stack, provider, digests
    finally:
        if stack is not None:
            stop_stack(stack)
        provider.stop()


def _names(session: requests.Session, api: str) -> set[str]:
    response = session.get(f"{api}/api/v1/repositories", params={"limit": 500}, timeout=10)
    assert response.status_code == 200, response.text
    return {r["name"] for r in response.json()["items"]}


def test_groups_give_the_roles_the_rules_say(signed):
    stack, _, _ = signed
    assert _names(sign_in(stack.api, "rita"), stack.api) == {CHART}
    assert _names(sign_in(stack.api, "nobody"), stack.api) == set()
    boss = sign_in(stack.api, "boss")
    assert _names(boss, stack.api) >= {CHART, SECRET}
    assert boss.get(f"{stack.api}/api/v1/me", timeout=10).json()["admin"] is True
    me = sign_in(stack.api, "dev").get(f"{stack.api}/api/v1/me", timeout=10).json()
    assert me["user"] == "dev" and me["admin"] is False and me["session"] is True
