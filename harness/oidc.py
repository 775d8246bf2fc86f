"""Sign-in for tests: a real OpenID Connect provider (panva's oidc-provider, OpenID certified, on Node.js: see
oidc/provider.mjs), a stand-in for the two GitLab API calls ocicat makes, and a sign-in without a browser.

The provider answers like GitLab: ``groups`` and the role claims at userinfo only, ``groups_direct`` in the ID token.
Its users are whoever types their name at its development login page; their claims are what the test says
(``Provider(users=...)``, ``set_user``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .processes import free_port, kill_tree, wait_http

HERE = Path(__file__).parent / "oidc"
CLIENT_ID, CLIENT_SECRET = "ocicat", "ocicat-secret"
_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def install() -> None:
    """oidc-provider from the npm registry, at the version package-lock.json pins (once per checkout)."""
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)


class Provider:
    def __init__(self, users: dict[str, dict], redirect_uris: list[str], log: Path):
        self.users, self.redirect_uris, self.log = users, redirect_uris, log
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._process = None

    def start(self) -> "Provider":
        """Start it, with a signing key of its own made now: a restart rotates the provider's keys."""
        install()
        key = json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        key.pop("key_ops", None)  # PyJWT says "sign"; published as it is, verifiers would refuse to verify with it
        key.update(kid=secrets.token_hex(8), use="sig", alg="RS256")
        env = {**os.environ, "PORT": str(self.port), "OIDC_USERS": json.dumps(self.users),
               "REDIRECT_URIS": json.dumps(self.redirect_uris), "JWKS": json.dumps({"keys": [key]})}
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(["node", "provider.mjs"], cwd=HERE, env=env, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"{self.issuer}/.well-known/openid-configuration", timeout=60)
        return self

    def stop(self) -> None:
        if self._process is not None:
            kill_tree(self._process.pid)
            self._process.wait(timeout=10)

    def kids(self) -> set[str]:
        """The ids of the keys it signs with now."""
        return {k["kid"] for k in requests.get(f"{self.issuer}/jwks", timeout=10).json()["keys"]}

    def set_user(self, login: str, claims: dict) -> None:
        """What the provider says about ``login`` from now on (its groups, its role claims)."""
        requests.put(f"{self.issuer}/test/users/{login}", json=claims, timeout=10).raise_for_status()

    def tamper(self, id_token: str) -> None:
        """The next token response carries ``id_token`` instead of the one the provider made."""
        requests.post(f"{self.issuer}/test/tamper", json={"id_token": id_token}, timeout=10).raise_for_status()

    def last_id_token(self) -> str:
        return requests.get(f"{self.issuer}/test/last-id-token", timeout=10).json()["id_token"]

    def other_client_id_token(self, login: str, nonce: str) -> str:
        """A genuine ID token for ``login`` with ``nonce``, made for another client of this provider."""
        session = requests.Session()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        callback = f"{self.issuer}/test/other-callback"
        start = f"{self.issuer}/auth?" + urlencode({
            "client_id": "other", "redirect_uri": callback, "response_type": "code", "scope": "openid",
            "state": "other", "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})
        code = parse_qs(urlsplit(interact(session, start, login, callback)).query)["code"][0]
        answer = requests.post(f"{self.issuer}/token", auth=("other", "other-secret"), timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": callback, "code_verifier": verifier})
        answer.raise_for_status()
        return answer.json()["id_token"]


def interact(session: requests.Session, url: str, login: str, until: str) -> str:
    """Follow the provider's pages from ``url``, signing in as ``login`` (any password) and consenting, until it
    sends the browser to a URL starting with ``until``; that URL."""
    for _ in range(20):
        if url.startswith(until):
            return url
        response = session.get(url, allow_redirects=False, timeout=10)
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            continue
        form = _FORM_ACTION.search(response.text)
        assert response.status_code == 200 and form, (response.status_code, response.text[:2000])
        fields = {"prompt": "consent"} if 'value="consent"' in response.text else {
            "prompt": "login", "login": login, "password": "any"}
        response = session.post(urljoin(url, form.group(1)), data=fields, allow_redirects=False, timeout=10)
        assert response.is_redirect, (response.status_code, response.text[:2000])
        url = urljoin(url, response.headers["Location"])
    raise AssertionError(f"the provider never sent the browser to {until}")


def start_sign_in(api: str) -> tuple[requests.Session, str]:
    """Begin a sign-in at ocicat: (the browser's session, the provider URL it was sent to)."""
    session = requests.Session()
    response = session.get(f"{api}/auth/sign-in", allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return session, response.headers["Location"]


def sign_in(api: str, login: str) -> requests.Session:
    """A signed-in browser session at ocicat, as a requests session holding its cookie (and its CSRF token in the
    ``X-CSRF-Token`` header, as ocicat's pages send it)."""
    session, url = start_sign_in(api)
    back = session.get(interact(session, url, login, f"{api}/auth/callback"), allow_redirects=False, timeout=10)
    assert back.status_code == 303 and back.headers["Location"].startswith("/ui/"), (back.status_code, back.headers)
    assert "failed=" not in back.headers["Location"], back.headers["Location"]
    me = session.get(f"{api}/api/v1/me", timeout=10).json()
    assert me["session"], me
    session.headers["X-CSRF-Token"] = me["csrf_token"]
    return session


class JsonServer:
    """A loopback HTTP server answering every GET with ``answer(path, authorization)``: (status, JSON body,
    headers). ``calls``: the paths it was asked for, in order."""

    def __init__(self, answer):
        self.calls: list[str] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                calls.append(self.path)
                status, body, headers = answer(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                    **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GitLabApi:
    """The two calls of GitLab's REST API that ocicat makes to learn where a user is Reporter or above:
    ``GET /api/v4/groups`` and ``/api/v4/projects`` with ``min_access_level``, paginated by ``Link`` headers as
    GitLab does. The user is whoever the bearer token belongs to, asked of the provider's userinfo, as GitLab would
    know its own token. ``levels``: login -> {"group:<full path>" or "project:<path>": access level}."""

    def __init__(self, provider: Provider, levels: dict[str, dict[str, int]], per_page: int = 2):
        self.provider, self.levels, self.per_page = provider, levels, per_page
        self._server = JsonServer(self.answer)
        self.url, self.calls = self._server.url, self._server.calls

    def close(self) -> None:
        self._server.close()

    def answer(self, path: str, authorization: str) -> tuple[int, object, dict]:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        me = requests.get(f"{self.provider.issuer}/me", headers={"Authorization": authorization}, timeout=10)
        if me.status_code != 200:
            return 401, {"message": "401 Unauthorized"}, {}
        resource = {"/api/v4/groups": "full_path", "/api/v4/projects": "path_with_namespace"}.get(parts.path)
        if resource is None:
            return 404, {"message": "404 Not Found"}, {}
        minimum = int(query.get("min_access_level", 0))
        is_group = parts.path.endswith("groups")
        paths = sorted(p for p, level in self.levels.get(me.json()["sub"], {}).items()
                       if level >= minimum and (p.startswith("group:") if is_group else p.startswith("project:")))
        page = int(query.get("page", 1))
        per_page = min(int(query.get("per_page", 20)), self.per_page)
        items = [{resource: p.split(":", 1)[1]} for p in paths[(page - 1) * per_page:page * per_page]]
        headers = {}
        if page * per_page < len(paths):
            headers["Link"] = f'<{self.url}{parts.path}?{urlencode({**query, "page": page + 1})}>; rel="next"'
        return 200, items, headers
