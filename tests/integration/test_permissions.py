"""Permissions on a running private catalog, generated from one table: who sees which repository.

A real registry notifies a real ``ocicat serve`` whose default visibility is
private. Every principal (anonymous, each role on a path, a nested role, an
administrator, a registry JWT, and people signed in with GitLab-shaped claims
from a real OpenID Connect provider) asks every endpoint about every
repository; what it may not see must answer exactly like what does not exist,
and no list, count, search hit or facet may reveal it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth import RegistryTokens
from harness.oci import push_chart, push_image
from harness.oidc import CLIENT_ID, CLIENT_SECRET, GitLabApi, Provider, sign_in
from harness.processes import OCICAT, REPO_ROOT, free_port, wait_until
from ocicat import accounts
from ocicat.catalog import visibility

from .stack import start_stack, stop_stack

RUN = uuid.uuid4().hex[:6]
WORD = f"permword{RUN}"  # in every description: one search finds every repository
ISSUER, AUDIENCE = "https://gitlab.test/jwt/auth", "container_registry"

# The catalog: repository -> (kind, visibility it gets). Rules: open public, team private
# (the default), team/sub/public public again inside it; other has no rule and nobody's role.
REPOSITORIES = {
    f"open{RUN}/charts/site": "helm-chart",
    f"team{RUN}/charts/api": "helm-chart",
    f"team{RUN}/sub/images/worker": "image",
    f"team{RUN}/sub/public/docs": "image",
    f"other{RUN}/secret": "helm-chart",
}
SITE, API, WORKER, DOCS, SECRET = REPOSITORIES
PUBLIC = {SITE, DOCS}
TEAM = {API, WORKER, DOCS}
RULES = {f"open{RUN}": "public", f"team{RUN}/sub/public": "public"}

# The one table: principal -> (its roles as {path: role}, admin, what it may see, where it may delete).
PRINCIPALS = {
    "anonymous": (None, False, PUBLIC, set()),
    "guest": ({f"team{RUN}": "guest"}, False, PUBLIC, set()),
    "reporter": ({f"team{RUN}": "reporter"}, False, PUBLIC | TEAM, set()),
    "developer": ({f"team{RUN}": "developer"}, False, PUBLIC | TEAM, TEAM),
    "maintainer": ({f"team{RUN}": "maintainer"}, False, PUBLIC | TEAM, TEAM),
    "owner": ({f"team{RUN}": "owner"}, False, PUBLIC | TEAM, TEAM),
    # a role on a nested path covers that path and below, not its parent's other children
    "nested-reporter": ({f"team{RUN}/sub": "reporter"}, False, PUBLIC | {WORKER, DOCS}, set()),
    "nested-developer": ({f"team{RUN}/sub/images": "developer", f"team{RUN}": "guest"}, False, PUBLIC | {WORKER}, {WORKER}),
    "admin": ({}, True, set(REPOSITORIES), set(REPOSITORIES)),
    # the registry's own token: pull on one repository, pull and delete on everything below team/sub
    "registry-jwt": (None, False, PUBLIC | {API, WORKER, DOCS}, {WORKER, DOCS}),
    # signed in with GitLab (GITLAB_USERS): no mapping written, the registry's permissions on GitLab's paths
    "gitlab-reporter": (None, False, PUBLIC | TEAM, set()),
    "gitlab-developer": (None, False, PUBLIC | TEAM, TEAM),
    "gitlab-owner": (None, False, PUBLIC | {WORKER, DOCS}, {WORKER, DOCS}),
    "gitlab-project-reporter": (None, False, PUBLIC | {API}, set()),
}

# GitLab's answers for those: its userinfo claims (role claims list direct memberships at exactly that level), and
# what its API says each may read at Reporter or above (harness.oidc.GitLabApi).
ROLE = "https://gitlab.org/claims/groups/"
GITLAB_USERS = {
    "gitlab-reporter": {"groups": [f"team{RUN}", f"team{RUN}/sub"], "groups_direct": [f"team{RUN}"]},
    "gitlab-developer": {"groups": [f"team{RUN}"], f"{ROLE}developer": [f"team{RUN}"]},
    "gitlab-owner": {"groups": [f"team{RUN}/sub"], f"{ROLE}owner": [f"team{RUN}/sub"]},
    # a Guest of the group (listed in groups, which gives nothing by itself) and Reporter of one project in it
    "gitlab-project-reporter": {"groups": [f"team{RUN}"]},
}
GITLAB_LEVELS = {
    "gitlab-reporter": {f"group:team{RUN}": 20, f"group:team{RUN}/sub": 20},
    "gitlab-developer": {f"group:team{RUN}": 30},
    "gitlab-owner": {f"group:team{RUN}/sub": 50},
    "gitlab-project-reporter": {f"group:team{RUN}": 10, f"project:team{RUN}/charts": 20,
                                f"project:team{RUN}/sub/images": 10},
}


def _keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, pem


SIGNING_KEY, PUBLIC_PEM = _keys()


def registry_jwt(access: list, key=None, algorithm: str = "RS256", **claims) -> str:
    now = datetime.now(timezone.utc)
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now, "exp": now + timedelta(minutes=5),
               "access": access, **claims}
    return jwt.encode(payload, key or SIGNING_KEY, algorithm=algorithm)


JWT_ACCESS = [{"type": "repository", "name": API, "actions": ["pull"]},
              {"type": "repository", "name": f"team{RUN}/sub/*", "actions": ["pull", "delete"]},
              {"type": "repository", "name": SECRET, "actions": ["push"]},  # push alone shows nothing
              {"type": "registry", "name": "catalog", "actions": ["*"]}]


class Private:
    def __init__(self, stack, tokens: dict, digests: dict, sessions: dict):
        self.stack, self.tokens, self.digests, self.sessions = stack, tokens, digests, sessions

    def get(self, who: str, path: str, **params) -> requests.Response:
        return requests.get(f"{self.stack.api}{path}", params=params, headers=self.headers(who), timeout=10)

    def headers(self, who: str) -> dict:
        """A token's Authorization, or a browser session's cookie with its CSRF token, as ocicat's pages send them."""
        if who in self.sessions:
            session = self.sessions[who]
            return {"Cookie": f"ocicat_session={session.cookies['ocicat_session']}",
                    "X-CSRF-Token": session.headers["X-CSRF-Token"]}
        token = self.tokens.get(who)
        return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module")
def private(make_database, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "registry-token.pem"
    keys.write_bytes(PUBLIC_PEM)
    logs = tmp_path_factory.mktemp("private")
    port = free_port()
    provider = Provider(GITLAB_USERS, [f"http://127.0.0.1:{port}/auth/callback"], logs / "provider.log").start()
    gitlab = GitLabApi(provider, GITLAB_LEVELS)
    stack = start_stack(make_database, logs, port=port, OCICAT_DEFAULT_VISIBILITY="private",
                        OCICAT_REGISTRY_TOKEN_ISSUER=ISSUER, OCICAT_REGISTRY_TOKEN_AUDIENCE=AUDIENCE,
                        OCICAT_REGISTRY_TOKEN_KEYS=str(keys), OCICAT_REGISTRY_TOKEN_NESTED="true",
                        OCICAT_OIDC_ISSUER=provider.issuer, OCICAT_OIDC_CLIENT_ID=CLIENT_ID,
                        OCICAT_OIDC_CLIENT_SECRET=CLIENT_SECRET, OCICAT_OIDC_GITLAB="true",
                        OCICAT_OIDC_GITLAB_API_URL=gitlab.url, OCICAT_OIDC_SCOPES="openid groups read_api",
                        OCICAT_SECRET_KEY="test-" + uuid.uuid4().hex)
    try:
        digests = {}
        for name, kind in REPOSITORIES.items():
            if kind == "helm-chart":
                digests[name] = push_chart(stack.registry.url, name, "1.0.0", "1.0.0", description=f"{WORD} chart",
                                           keywords=["permissions"])
            else:
                digests[name] = push_image(stack.registry.url, name, "v1", seed=name)
        with stack.db.transaction() as cur:
            for path, value in RULES.items():
                visibility.set_rule(cur, path, value == "public")
            tokens = {}
            for who, (roles, admin, _, _) in PRINCIPALS.items():
                if roles is None:
                    continue
                accounts.create_user(cur, f"{who}-{RUN}", admin)
                for path, role in roles.items():
                    accounts.grant(cur, f"{who}-{RUN}", path, role)
                tokens[who] = accounts.create_token(cur, f"{who}-{RUN}", "permission table")[1]
        tokens["registry-jwt"] = registry_jwt(JWT_ACCESS)
        view = Private(stack, tokens, digests, {who: sign_in(stack.api, who) for who in GITLAB_USERS})
        wait_until(lambda: {r["name"] for r in view.get("admin", "/api/v1/repositories", limit=500).json()["items"]}
                   >= set(REPOSITORIES), timeout=60, what="the private catalog to be indexed")
        yield view
    finally:
        stop_stack(stack)
        gitlab.close()
        provider.stop()


def _detail_paths(private: Private, repository: str) -> list[str]:
    paths = [f"/api/v1/repositories/{repository}", f"/api/v1/repositories/{repository}/-/tags",
             f"/api/v1/repositories/{repository}/-/manifests/{private.digests[repository]}"]
    if REPOSITORIES[repository] == "helm-chart":
        paths += [f"/api/v1/charts/{repository}/-/versions", f"/api/v1/charts/{repository}/-/versions/1.0.0",
                  f"/api/v1/charts/{repository}/-/digests/{private.digests[repository]}"]
    return paths


@pytest.mark.parametrize("who", PRINCIPALS)
def test_every_detail_endpoint_answers_by_the_table(private, who):
    visible = PRINCIPALS[who][2]
    for repository in REPOSITORIES:
        for path in _detail_paths(private, repository):
            response = private.get(who, path)
            if repository in visible:
                assert response.status_code == 200, (who, path, response.text)
            else:
                assert response.status_code == 404, (who, path, response.text)
                # the same answer as for what does not exist: nothing tells the two apart
                missing = private.get(who, path.replace(repository, repository + "-nothing"))
                assert response.json()["detail"].replace(repository, "X") == missing.json()["detail"].replace(
                    repository + "-nothing", "X")


@pytest.mark.parametrize("who", PRINCIPALS)
def test_lists_search_and_facets_show_only_what_the_table_allows(private, who):
    visible = PRINCIPALS[who][2]
    ours = lambda found: found & set(REPOSITORIES)  # noqa: E731 - the shared database holds other tests' rows

    def listed(path: str, key: str = "name", **params) -> set[str]:
        response = private.get(who, path, **params)
        assert response.status_code == 200, response.text
        return {item[key] for item in response.json()["items"]}

    assert ours(listed("/api/v1/repositories", limit=500)) == visible
    for namespace in {name.split("/")[0] for name in REPOSITORIES}:
        assert listed("/api/v1/repositories", namespace=namespace) == {n for n in visible if n.startswith(namespace + "/")}
    # namespaces: a namespace holding only hidden repositories is not listed, at any level
    tops = {name.split("/")[0] for name in REPOSITORIES}
    assert listed("/api/v1/namespaces", limit=500) & tops == {n.split("/")[0] for n in visible}
    for parent in (f"team{RUN}", f"team{RUN}/sub", f"other{RUN}"):
        below = {"/".join(n.split("/")[:parent.count("/") + 2]) for n in visible if n.startswith(parent + "/")}
        assert listed("/api/v1/namespaces", namespace=parent) == {b for b in below if b not in visible}, parent
    charts = {n for n in visible if REPOSITORIES[n] == "helm-chart"}
    assert ours(listed("/api/v1/charts", "repository", limit=500)) == charts
    assert listed("/api/v1/charts", "repository", q=WORD) == charts
    assert listed("/api/v1/repositories", q=WORD) == charts

    search = private.get(who, "/api/v1/search", q=WORD).json()
    assert {hit["name"] for hit in search["items"]} == charts
    assert search["facets"]["kind"] == ([{"value": "helm-chart", "count": len(charts)}] if charts else [])
    expected_namespaces = sorted({n.rpartition("/")[0] for n in charts})
    assert sorted(f["value"] for f in search["facets"]["namespace"]) == expected_namespaces
    # a filter naming a hidden namespace is an empty answer, not an error that would confirm it exists
    for namespace in {n.rpartition("/")[0] for n in set(REPOSITORIES) - visible}:
        filtered = private.get(who, "/api/v1/search", q=WORD, namespace=namespace).json()
        assert filtered["items"] == [] and filtered["facets"]["kind"] == []
        # the namespace facet ignores its own filter: still only the visible namespaces
        assert sorted(f["value"] for f in filtered["facets"]["namespace"]) == expected_namespaces
    # images are found by name
    for image in (n for n in REPOSITORIES if REPOSITORIES[n] == "image"):
        assert (image in listed("/api/v1/search", q=image.rsplit("/", 1)[-1], limit=500)) == (image in visible), image


@pytest.mark.parametrize("who", PRINCIPALS)
def test_delete_is_refused_by_the_table(private, who):
    """Refusals only (allowed deletes really delete: see the next test); nothing reaches the registry."""
    _, _, visible, deletable = PRINCIPALS[who]
    for repository in set(REPOSITORIES) - deletable:
        response = requests.delete(
            f"{private.stack.api}/api/v1/repositories/{repository}/-/manifests/{private.digests[repository]}",
            headers=private.headers(who), timeout=10)
        expected = 404 if repository not in visible else (401 if who == "anonymous" else 403)
        assert response.status_code == expected, (who, repository, response.text)
        tag = requests.delete(f"{private.stack.api}/api/v1/repositories/{repository}/-/tags/1.0.0",
                              headers=private.headers(who), timeout=10)
        # only the charts carry a tag 1.0.0; the images' absent tag is a 404 for everyone
        assert tag.status_code == (expected if REPOSITORIES[repository] == "helm-chart" else 404), (who, repository, tag.text)
    for repository in REPOSITORIES:  # all still there
        reference = private.digests[repository]
        assert requests.head(f"{private.stack.registry.url}/v2/{repository}/manifests/{reference}",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10).ok


@pytest.mark.parametrize("who", ["developer", "owner", "nested-developer", "admin", "registry-jwt", "gitlab-developer"])
def test_a_developer_deletes_through_the_registry_and_the_catalog_follows(private, who):
    repository = f"team{RUN}/sub/images/worker" if who in ("nested-developer", "registry-jwt") else f"team{RUN}/charts/api"
    tag = f"disposable-{who}"
    digest = push_image(private.stack.registry.url, repository, tag, seed=f"{who}{time.time()}")
    tags_path = f"/api/v1/repositories/{repository}/-/tags"
    wait_until(lambda: tag in {t["name"] for t in private.get("admin", tags_path, limit=500).json()["items"]},
               timeout=60, what="the disposable image")
    response = requests.delete(f"{private.stack.api}/api/v1/repositories/{repository}/-/manifests/{digest}",
                               headers=private.headers(who), timeout=10)
    assert response.status_code == 202, response.text
    assert response.json() == {"repository": repository, "reference": digest, "status": "accepted"}
    # the registry deleted it; the catalog changes when its event arrives
    assert requests.get(f"{private.stack.registry.url}/v2/{repository}/manifests/{digest}", timeout=10).status_code == 404
    wait_until(lambda: private.get("admin", f"/api/v1/repositories/{repository}/-/manifests/{digest}").status_code == 404,
               timeout=60, what="the delete event")
    assert tag not in {t["name"] for t in private.get("admin", tags_path, limit=500).json()["items"]}


def test_a_tag_delete_the_registry_cannot_do_is_a_clear_conflict(private):
    """Distribution 2.8 deletes by digest only: ocicat says so instead of deleting every tag of the digest."""
    response = requests.delete(f"{private.stack.api}/api/v1/repositories/{API}/-/tags/1.0.0",
                               headers=private.headers("developer"), timeout=10)
    assert response.status_code == 409, response.text
    assert "refused" in response.json()["detail"]
    assert private.stack.registry.host not in response.text  # the registry's address is not the caller's business
    assert private.get("admin", f"/api/v1/charts/{API}/-/versions/1.0.0").status_code == 200


def test_registry_token_wildcards_cover_only_what_is_below_a_real_path(private, tmp_path):
    """"/*", "*" and bad names give nothing; "group/*" counts only with OCICAT_REGISTRY_TOKEN_NESTED."""
    sneaky = registry_jwt([{"type": "repository", "name": name, "actions": ["pull", "delete"]}
                           for name in ("/*", "*", "", f"team{RUN}/../other{RUN}/*", f"other{RUN}/secret\n", "//*")])
    listed = {i["name"] for i in requests.get(f"{private.stack.api}/api/v1/repositories", params={"limit": 500},
                                              headers={"Authorization": f"Bearer {sneaky}"}, timeout=10).json()["items"]}
    assert listed & set(REPOSITORIES) == PUBLIC
    (tmp_path / "key.pem").write_bytes(PUBLIC_PEM)
    strict = RegistryTokens(ISSUER, AUDIENCE, str(tmp_path / "key.pem"))  # nested off: the default
    assert strict.principal(registry_jwt(JWT_ACCESS)).view.prefixes == frozenset()
    assert strict.principal(registry_jwt(JWT_ACCESS)).view.names == {API}


def test_an_empty_path_is_refused_rather_than_taken_for_the_root(private):
    with private.stack.db.transaction() as cur:
        for path in ("", " ", "//"):
            with pytest.raises(accounts.AccountError, match="use / for the whole registry"):
                accounts.grant(cur, f"reporter-{RUN}", path, "owner")
            with pytest.raises(accounts.AccountError):
                visibility.set_rule(cur, path, True)
    assert _cli(private, "grant", f"reporter-{RUN}", "", "owner").returncode != 0


def test_me_says_who_the_api_takes_the_caller_for(private):
    assert private.get("anonymous", "/api/v1/me").json() == {"authenticated": False, "user": None, "admin": False,
                                                             "session": False, "csrf_token": None}
    assert private.get("admin", "/api/v1/me").json() == {"authenticated": True, "user": f"admin-{RUN}", "admin": True,
                                                         "session": False, "csrf_token": None}
    assert private.get("registry-jwt", "/api/v1/me").json()["user"] == "registry:alice"
    signed_in = private.get("gitlab-owner", "/api/v1/me").json()
    assert signed_in["user"] == "gitlab-owner" and signed_in["session"] and signed_in["csrf_token"]


def _hs256(secret: bytes, payload: str) -> str:
    """The algorithm-confusion forgery: HMAC keyed with the verifier's public key (PyJWT will not make one)."""
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{jwt.utils.base64url_encode(signature).decode()}"


def _forgeries(private: Private) -> dict[str, str]:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    reporter = private.tokens["reporter"]
    token_id = accounts.TOKEN_RE.match(reporter).group(1)
    header, payload, _ = registry_jwt(JWT_ACCESS).split(".")
    none_header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    return {
        "malformed ocicat token": "ocicat_nothing",
        "right id, wrong secret": f"ocicat_{token_id}_{'A' * 43}",
        "unknown id": f"ocicat_999999999_{reporter[-43:]}",
        "truncated": reporter[:-1],
        "jwt signed by another key": registry_jwt(JWT_ACCESS, key=other_key),
        "jwt from another issuer": registry_jwt(JWT_ACCESS, iss="https://evil.test/"),
        "jwt for another audience": registry_jwt(JWT_ACCESS, aud="another-registry"),
        "expired jwt": registry_jwt(JWT_ACCESS, exp=datetime.now(timezone.utc) - timedelta(minutes=5)),
        "jwt with alg none": f"{none_header}.{payload}.",
        "jwt with a tampered payload": f"{header}.{jwt.utils.base64url_encode(b'{}').decode()}.{registry_jwt(JWT_ACCESS).split('.')[2]}",
        "hs256 keyed with the public key": _hs256(PUBLIC_PEM, payload),
        "garbage": "x" * 5000,
    }


def test_expired_revoked_malformed_and_forged_tokens_get_401_and_learn_nothing(private):
    with private.stack.db.transaction() as cur:
        accounts.create_user(cur, f"temp-{RUN}")
        accounts.grant(cur, f"temp-{RUN}", "/", "owner")
        revoked_id, revoked = accounts.create_token(cur, f"temp-{RUN}")
        expired_id, expired = accounts.create_token(cur, f"temp-{RUN}", expires_in=timedelta(days=1))
        cur.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %s", (expired_id,))
    before = requests.get(f"{private.stack.api}/api/v1/repositories/{SECRET}",
                          headers={"Authorization": f"Bearer {revoked}"}, timeout=10)
    assert before.status_code == 200  # the token works until revoked
    with private.stack.db.transaction() as cur:
        accounts.revoke_token(cur, revoked_id)
    cases = {**_forgeries(private), "revoked": revoked, "expired": expired}
    bodies = set()
    for label, token in cases.items():
        for path in ("/api/v1/repositories", f"/api/v1/repositories/{SECRET}", "/api/v1/search?q=" + WORD, "/api/v1/me"):
            response = requests.get(f"{private.stack.api}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert response.status_code == 401, (label, path, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            bodies.add(response.text)
    assert len(bodies) == 1, bodies  # one answer for every kind of bad token: nothing tells them apart
    for header in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Token abc"):
        assert requests.get(f"{private.stack.api}/api/v1/repositories", headers={"Authorization": header},
                            timeout=10).status_code == 401


def test_es256_registry_tokens_from_a_jwks_file(tmp_path, private):
    """A JWKS file (the key chosen by kid) and an ES256 signature, in-process against the same catalog."""
    from ocicat.cli import build_app
    from ocicat.config import Config

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "k1", "use": "sig"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    app = build_app(Config(database_url=private.stack.env["OCICAT_DATABASE_URL"], registry_token_issuer=ISSUER,
                            registry_token_audience=AUDIENCE, registry_token_keys=str(tmp_path / "jwks.json")))
    client = app.test_client()
    good = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60,
                       "access": [{"type": "repository", "name": SECRET, "actions": ["pull"]}]},
                      key, algorithm="ES256", headers={"kid": "k1"})
    assert client.get(f"/api/v1/repositories/{SECRET}", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert client.get(f"/api/v1/repositories/{SECRET}").status_code == 404
    wrong_kid = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, key, algorithm="ES256",
                           headers={"kid": "k2"})
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {wrong_kid}"}).status_code == 401
    app.extensions["ocicat"].db.close()


INJECTIONS = ["' OR '1'='1", "%", "_", "\\", f"{WORD}' --", f"{SECRET}", "*:*", "!secret | other", "a & (b | c)",
              "$$; DROP TABLE repositories; --", "<script>", "\u202e", "é" * 200]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_change_nothing_and_error_cleanly(private, text):
    for path, param in (("/api/v1/repositories", "q"), ("/api/v1/charts", "q"), ("/api/v1/search", "q"),
                        ("/api/v1/repositories", "namespace"), ("/api/v1/search", "namespace"),
                        (f"/api/v1/repositories/{SITE}/-/tags", "name"), ("/api/v1/repositories", "cursor"),
                        ("/api/v1/repositories", "kind"), ("/api/v1/repositories", "sort")):
        response = private.get("anonymous", path, **{param: text})
        assert response.status_code in (200, 400), (path, param, response.text)
        if response.status_code == 200:
            found = {i.get("name") or i.get("repository") for i in response.json()["items"]}
            assert not found & (set(REPOSITORIES) - PUBLIC), (path, param, found)
        else:
            assert response.headers["Content-Type"] == "application/problem+json"
    for path in (f"/api/v1/repositories/{text}", f"/api/v1/charts/{SECRET}/-/versions/{text}",
                 f"/api/v1/repositories/{SECRET}/-/manifests/{text}"):
        assert private.get("anonymous", path).status_code in (400, 404)
    assert private.get("admin", "/api/v1/repositories", q=WORD).status_code == 200  # the table is still there


def _cli(private: Private, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OCICAT, *args], env=private.stack.env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)


def test_administration_through_the_cli(private):
    user = f"cli-{RUN}"
    assert _cli(private, "user", "create", user).returncode == 0
    assert "exists already" in _cli(private, "user", "create", user).stderr
    created = _cli(private, "token", "create", user, "--description", "ci", "--expires-in-days", "30")
    token = created.stdout.strip()
    assert created.returncode == 0 and accounts.TOKEN_RE.match(token), created.stderr
    headers = {"Authorization": f"Bearer {token}"}
    detail = f"{private.stack.api}/api/v1/repositories/{SECRET}"
    assert requests.get(detail, headers=headers, timeout=10).status_code == 404

    assert _cli(private, "grant", user, f"other{RUN}", "reporter").returncode == 0
    assert requests.get(detail, headers=headers, timeout=10).status_code == 200
    who = _cli(private, "who-can-see", SECRET).stdout
    assert f"{SECRET}: private (default)" in who and f"{user}\treporter on other{RUN}" in who and f"admin-{RUN}\tadmin" in who
    assert "not a repository path" in _cli(private, "grant", user, "Bad Path/..", "reporter").stderr
    assert _cli(private, "grant", user, "x", "superuser").returncode != 0

    assert _cli(private, "visibility", "set", f"other{RUN}", "public").returncode == 0
    assert requests.get(detail, timeout=10).status_code == 200  # anyone, now
    assert f"{SECRET}: public (rule on other{RUN})" in _cli(private, "who-can-see", SECRET).stdout
    assert _cli(private, "visibility", "unset", f"other{RUN}").returncode == 0
    assert requests.get(detail, timeout=10).status_code == 404

    assert _cli(private, "revoke", user, f"other{RUN}").returncode == 0
    assert requests.get(detail, headers=headers, timeout=10).status_code == 404
    [listed] = [line for line in _cli(private, "token", "list", "--user", user).stdout.splitlines()]
    token_id = listed.split("\t")[0]
    assert "active" in listed and "last used" in listed
    assert _cli(private, "token", "revoke", token_id).returncode == 0
    assert requests.get(detail, headers=headers, timeout=10).status_code == 401
    assert "\trevoked\t" in _cli(private, "token", "list", "--user", user).stdout
    with private.stack.db.transaction() as cur:  # a token whose expiry has passed (it was listed as active)
        accounts.create_token(cur, user, "lapsed", expires_in=timedelta(seconds=-1))
    [lapsed] = [line for line in _cli(private, "token", "list", "--user", user).stdout.splitlines() if "lapsed" in line]
    assert "\texpired\t" in lapsed
    assert user in _cli(private, "user", "list").stdout
    assert _cli(private, "user", "delete", user).returncode == 0
    assert user not in _cli(private, "user", "list").stdout


def test_a_new_repository_under_a_public_rule_is_public_at_once(private):
    repository = f"open{RUN}/late/arrival"
    push_image(private.stack.registry.url, repository, "v1", seed="late")
    wait_until(lambda: private.get("anonymous", f"/api/v1/repositories/{repository}").status_code == 200, timeout=60,
               what="the new public repository")
