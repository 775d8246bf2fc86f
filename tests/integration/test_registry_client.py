"""RegistryClient against a real CNCF registry (anonymous, htpasswd, token auth) and hostile HTTP servers.

Everything listens on loopback only. The registries are real ``docker-registry``
processes; the token service and the hostile servers are small ``http.server``
threads, so the tests can see exactly what the client sent.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from api.auth import RegistryTokens
from harness.oci import push_image
from harness.processes import free_port
from harness.registry import Registry
from indexer.registry import MAX_MANIFEST_BYTES, RegistryClient
from ocicat.errors import NotFound, PermanentError, Refused, TransientError

USER, PASSWORD = "ocicat", "s3cret-pw"
TOKEN_SERVICE, TOKEN_ISSUER = "test-registry", "test-issuer"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def fetch_image(client: RegistryClient, repository: str, digest: str) -> tuple[dict, bytes]:
    """Fetch a manifest and its config blob; check both came back intact."""
    fetched = client.get_manifest(repository, digest)
    assert fetched.media_type == OCI_MANIFEST
    assert sha256(fetched.body) == digest
    manifest = json.loads(fetched.body)
    config = client.get_blob(repository, manifest["config"]["digest"])
    assert sha256(config) == manifest["config"]["digest"]
    return manifest, config


# -- small loopback HTTP servers ---------------------------------------------------


class LoopbackServer:
    """A threaded ``http.server`` on a loopback address; ``handle(request)`` answers every GET.

    Every request's method, path and headers are recorded in ``requests``.
    """

    def __init__(self, handle, host: str = "127.0.0.1"):
        self.requests: list[dict] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # HTTP/1.0: every answer closes its connection, so a body without
            # Content-Length is simply "until EOF".
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                owner.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                try:
                    handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading on purpose (size caps)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def reply(handler, status: int, body: bytes = b"", headers: dict | None = None, content_length: bool = True) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if content_length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def serve():
    """Factory for LoopbackServers, all shut down after the test."""
    servers = []

    def make(handle, host: str = "127.0.0.1") -> LoopbackServer:
        server = LoopbackServer(handle, host)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


# -- a Docker token service (distribution docs spec/auth/token.md) -------------------


class TokenService:
    """Issues RS256 JWTs the registry trusts: signed by a self-signed cert that is the rootcertbundle.

    Checks Basic credentials, grants whatever scope is asked for, and records each request.
    """

    def __init__(self, directory: Path):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = directory / "token-root.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        # x5c is standard base64 (not base64url) of each certificate's DER.
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.requests: list[dict] = []
        self._server = LoopbackServer(self._handle)
        self.realm = f"{self._server.url}/token"

    def issue(self, subject: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:  # "repository:<name>:<action>[,<action>...]"; names may hold no ':'
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,  # distribution 2.8 wants a single string here
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": self.x5c})

    def _handle(self, handler) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        self.requests.append({"scope": query.get("scope", []), "service": query.get("service", [None])[0]})
        if url.path != "/token":
            return reply(handler, 404)
        if handler.headers.get("Authorization") != basic_header(USER, PASSWORD):
            return reply(handler, 401, headers={"WWW-Authenticate": 'Basic realm="token"'})
        token = self.issue(USER, query.get("scope", []))
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        reply(handler, 200, body, {"Content-Type": "application/json"})

    def close(self) -> None:
        self._server.close()


# -- registries ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def anonymous_registry():
    registry = Registry()
    try:
        yield registry.start()  # close() also stops a process that never came up
    finally:
        registry.close()


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory):
    # Cost 4 (the minimum) keeps the registry's per-request bcrypt check fast.
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd = tmp_path_factory.mktemp("htpasswd") / "htpasswd"
    htpasswd.write_text(f"{USER}:{hashed}\n")
    registry = Registry(auth={"htpasswd": {"realm": "test", "path": str(htpasswd)}})
    try:
        yield registry.start()
    finally:
        registry.close()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    """A registry using token auth, and the token service it trusts."""
    tokens = TokenService(tmp_path_factory.mktemp("token"))
    registry = Registry(auth={"token": {"realm": tokens.realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                                        "rootcertbundle": str(tokens.bundle)}})
    try:
        yield registry.start(), tokens
    finally:
        registry.close()
        tokens.close()


# -- against the real registry ---------------------------------------------------------


def test_anonymous_fetch_manifest_and_config(anonymous_registry):
    digest = push_image(anonymous_registry.url, "team/app", "v1", seed="anon")
    client = RegistryClient(anonymous_registry.url)

    manifest, config = fetch_image(client, "team/app", digest)

    assert manifest["mediaType"] == OCI_MANIFEST
    assert json.loads(config)["config"]["Labels"] == {"seed": "anon"}
    with pytest.raises(NotFound):
        client.get_manifest("team/app", sha256(b"never pushed"))
    with pytest.raises(NotFound):
        client.get_blob("team/app", sha256(b"never pushed"))


def test_basic_auth(basic_registry):
    pusher = requests.Session()
    pusher.auth = (USER, PASSWORD)
    digest = push_image(basic_registry.url, "private/app", "v1", seed="basic", session=pusher)

    manifest, config = fetch_image(RegistryClient(basic_registry.url, USER, PASSWORD), "private/app", digest)
    assert json.loads(config)["config"]["Labels"] == {"seed": "basic"}

    # A 401 is an operator-fixable credentials problem: transient, not a poison event.
    for client in (RegistryClient(basic_registry.url, USER, "wrong"), RegistryClient(basic_registry.url)):
        with pytest.raises(TransientError, match="401"):
            client.get_manifest("private/app", digest)
        with pytest.raises(TransientError, match="401"):
            client.get_blob("private/app", manifest["config"]["digest"])


def test_token_auth_fetches_and_caches_the_token(token_registry):
    registry, tokens = token_registry
    # The test pushes with a push,pull token taken from the service directly.
    pusher = requests.Session()
    pusher.headers["Authorization"] = "Bearer " + tokens.issue(USER, ["repository:tok/app:push,pull"])
    digest = push_image(registry.url, "tok/app", "v1", seed="token", session=pusher)

    client = RegistryClient(registry.url, USER, PASSWORD)
    before = len(tokens.requests)
    manifest, config = fetch_image(client, "tok/app", digest)
    assert json.loads(config)["config"]["Labels"] == {"seed": "token"}
    # One token, for exactly the pull scope, reused for the blob.
    assert tokens.requests[before:] == [{"scope": ["repository:tok/app:pull"], "service": TOKEN_SERVICE}]

    # Fetching the same repository again reuses the cached token.
    fetch_image(client, "tok/app", digest)
    assert len(tokens.requests) == before + 1


def test_token_registry_really_checks_tokens(token_registry):
    """Guards the fixture: the registry verifies signature and scope, so the tests above mean something."""
    registry, tokens = token_registry
    url = f"{registry.url}/v2/tok/app/tags/list"
    forger = TokenService(Path(tempfile.mkdtemp(prefix="ocicat-forger-")))
    try:
        forged = forger.issue(USER, ["repository:tok/app:pull"])  # same claims, untrusted key
    finally:
        forger.close()
        shutil.rmtree(forger.bundle.parent, ignore_errors=True)
    for token, status in ((tokens.issue(USER, ["repository:tok/app:pull"]), 200),
                          (tokens.issue(USER, ["repository:other/app:pull"]), 401),
                          (forged, 401)):
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == status


def test_token_auth_with_wrong_credentials_is_transient(token_registry):
    registry, tokens = token_registry
    client = RegistryClient(registry.url, USER, "wrong")
    with pytest.raises(TransientError, match="401"):
        client.get_manifest("tok/app", sha256(b"anything"))


# -- against hostile servers -------------------------------------------------------------


def test_redirect_to_another_host_drops_authorization(serve):
    blob = b'{"architecture": "amd64", "os": "linux"}'
    blob_digest = sha256(blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"digest": blob_digest, "size": len(blob)}, "layers": []}).encode()
    manifest_digest = sha256(manifest)

    # A different loopback *host* (not just another port) stands in for blob storage.
    storage = serve(lambda h: reply(h, 200, blob, {"Content-Type": "application/octet-stream"}), host="127.0.0.2")

    def registry(h):
        if h.headers.get("Authorization") != basic_header(USER, PASSWORD):
            return reply(h, 401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        if h.path == f"/v2/repo/manifests/{manifest_digest}":
            return reply(h, 200, manifest, {"Content-Type": OCI_MANIFEST})
        if h.path == f"/v2/repo/blobs/{blob_digest}":
            return reply(h, 307, headers={"Location": f"{storage.url}/storage/{blob_digest}"})
        reply(h, 404)

    origin = serve(registry)
    client = RegistryClient(origin.url, USER, PASSWORD)

    assert client.get_manifest("repo", manifest_digest).body == manifest
    assert client.get_blob("repo", blob_digest) == blob

    # The registry did get the credentials for the blob; the storage host did not.
    blob_requests = [r for r in origin.requests if "/blobs/" in r["path"]]
    assert [r["headers"].get("Authorization") for r in blob_requests] == [basic_header(USER, PASSWORD)]
    assert [r["path"] for r in storage.requests] == [f"/storage/{blob_digest}"]
    assert not {name.lower() for name in storage.requests[0]["headers"]} & {"authorization", "cookie"}


def test_digest_mismatch_is_permanent(serve):
    genuine = b'{"schemaVersion": 2}'
    forged = b'{"schemaVersion": 2, "injected": true}'
    server = serve(lambda h: reply(h, 200, forged, {"Content-Type": OCI_MANIFEST}))
    client = RegistryClient(server.url)

    with pytest.raises(PermanentError, match=f"digest mismatch: expected {sha256(genuine)}, content is {sha256(forged)}"):
        client.get_manifest("repo", sha256(genuine))
    with pytest.raises(PermanentError, match="digest mismatch"):
        client.get_blob("repo", sha256(genuine))


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-eof"])
def test_oversize_blob_is_permanent(serve, declared):
    big = b"x" * 4096
    server = serve(lambda h: reply(h, 200, big, {"Content-Type": "application/octet-stream"}, content_length=declared))
    client = RegistryClient(server.url)

    with pytest.raises(PermanentError, match="over the 1024 byte limit"):
        client.get_blob("repo", sha256(big), max_bytes=1024)
    # Under the cap, the same body is fine.
    assert client.get_blob("repo", sha256(big), max_bytes=4096) == big


def test_error_body_is_not_read_past_the_cap(serve):
    size, sent, done = 64 * 1024 * 1024, [], threading.Event()

    def bad_request(h):
        try:
            h.send_response(400)
            h.send_header("Content-Length", str(size))
            h.end_headers()
            chunk = b"e" * 65536
            for _ in range(size // len(chunk)):
                h.wfile.write(chunk)  # raises once the client has closed and the socket buffers are full
                sent.append(len(chunk))
        finally:
            done.set()

    server = serve(bad_request)
    with pytest.raises(PermanentError, match="HTTP 400"):
        RegistryClient(server.url).get_blob("repo", sha256(b"x"), max_bytes=1024)
    assert done.wait(10), "the server is still writing: the client kept the connection open"
    # Only a short excerpt is wanted for the error message; loopback buffers hold a few MB at most.
    assert sum(sent) < 16 * 1024 * 1024


def test_oversize_manifest_refused_on_its_content_length(serve):
    # Only a declared length is sent; the client must refuse before reading a body.
    server = serve(lambda h: reply(h, 200, b"{}", {"Content-Type": OCI_MANIFEST,
                                                   "Content-Length": str(MAX_MANIFEST_BYTES + 1)}, content_length=False))
    with pytest.raises(PermanentError, match="byte limit"):
        RegistryClient(server.url).get_manifest("repo", sha256(b"{}"))


def test_unreachable_registry_is_transient():
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there any more
    with pytest.raises(TransientError, match="ConnectionError"):
        RegistryClient(closed).get_manifest("repo", sha256(b"anything"))
    with pytest.raises(TransientError, match="ConnectionError"):
        RegistryClient(closed, USER, PASSWORD).get_blob("repo", sha256(b"anything"))


def test_a_redirect_target_cannot_steer_credentials_to_its_realm(serve):
    """Blob storage answering 401 with its own Bearer realm gets no credentials, now or later."""
    blob = b"{}"
    stolen = serve(lambda h: reply(h, 200, b'{"token": "t"}', {"Content-Type": "application/json"}))
    storage = serve(lambda h: reply(h, 401, headers={"WWW-Authenticate": f'Bearer realm="{stolen.url}/steal"'}),
                    host="127.0.0.2")

    def registry(h):
        if h.headers.get("Authorization") != basic_header(USER, PASSWORD):
            return reply(h, 401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        reply(h, 307, headers={"Location": f"{storage.url}/blob"})

    client = RegistryClient(serve(registry).url, USER, PASSWORD)
    for _ in range(2):
        with pytest.raises(TransientError, match="401"):
            client.get_blob("repo", sha256(blob))
    assert stolen.requests == []


def test_a_plain_http_token_realm_on_another_host_is_refused(serve):
    stolen = serve(lambda h: reply(h, 200, b'{"token": "t"}'), host="127.0.0.2")
    registry = serve(lambda h: reply(h, 401, headers={"WWW-Authenticate": f'Bearer realm="{stolen.url}/token"'}))
    with pytest.raises(TransientError, match="401"):
        RegistryClient(registry.url, USER, PASSWORD).get_manifest("repo", sha256(b"x"))
    assert stolen.requests == []


def test_a_trickling_body_hits_the_read_deadline(serve, monkeypatch):
    monkeypatch.setattr("indexer.registry.READ_DEADLINE_SECONDS", 1)

    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        for _ in range(100):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)

    with pytest.raises(TransientError, match="took over 1s to arrive"):  # not the 10 s the body would take
        RegistryClient(serve(trickle).url).get_blob("repo", sha256(b"x" * 100))


def test_a_digest_from_a_manifest_cannot_walk_the_url(serve):
    server = serve(lambda h: reply(h, 200, b"{}"))
    client = RegistryClient(server.url)
    for digest in ("sha256:" + "a" * 64 + "/../../../_catalog", "sha256:../../_catalog", "md5:abc", ""):
        with pytest.raises(PermanentError, match="not a digest"):
            client.get_blob("repo", digest)
    assert server.requests == []


def test_the_registrys_own_tokens_verify_in_ocicat_and_deletes_carry_them(token_registry):
    """The tokens a real registry trusts (x5c header, rootcertbundle) are the ones ocicat's verifier accepts;
    a delete made with the caller's token is checked by the registry itself."""
    registry, tokens = token_registry
    verifier = RegistryTokens(TOKEN_ISSUER, TOKEN_SERVICE, str(tokens.bundle))
    pull = tokens.issue(USER, ["repository:tok/gone:pull"])
    principal = verifier.principal(pull)
    assert principal.view.names == {"tok/gone"} and not principal.may_delete("tok/gone")
    delete = tokens.issue(USER, ["repository:tok/gone:pull,delete"])
    assert verifier.principal(delete).may_delete("tok/gone")

    pusher = requests.Session()
    pusher.headers["Authorization"] = "Bearer " + tokens.issue(USER, ["repository:tok/gone:push,pull"])
    digest = push_image(registry.url, "tok/gone", "v1", seed="gone", session=pusher)
    client = RegistryClient(registry.url)
    with pytest.raises(Refused):
        client.delete_manifest("tok/gone", digest, bearer=pull)  # the registry wants the delete action
    client.delete_manifest("tok/gone", digest, bearer=delete)
    with pytest.raises(NotFound):
        client.delete_manifest("tok/gone", digest, bearer=delete)
