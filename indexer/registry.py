"""A small OCI distribution client: just what the worker fetches, done safely.

- URLs are always built from the configured base URL, never taken from an
  event (an event's ``target.url`` is attacker-influenced: SSRF).
- Every body is verified against its digest and capped in size.
- Redirects (blob storage backends) are followed by requests, which drops
  ``Authorization`` when the host changes; ``trust_env`` is off so no netrc or
  proxy credentials get re-attached on the way.
- Anonymous, Basic and Docker token auth: the first 401 tells which one the
  registry wants; bearer tokens are cached per scope until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import requests
import urllib3

from ocicat import metrics
from ocicat.errors import NotFound, PermanentError, Refused, TransientError
from ocicat.oci.media_types import MANIFEST_TYPES
from ocicat.oci.names import DIGEST_RE
from ocicat.untrusted import storable

MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)
MAX_MANIFEST_BYTES = 8 * 1024 * 1024  # the spec asks clients to handle at least 4 MB
MAX_CONFIG_BYTES = 16 * 1024 * 1024
TIMEOUT = (3.05, 30)  # (connect, read) seconds
MAX_TOKEN_BYTES = 64 * 1024
# A whole body must arrive within this; the read timeout alone is per read, so a
# registry trickling a byte at a time could otherwise hold a worker forever.
READ_DEADLINE_SECONDS = 120
MIN_TRANSFER_RATE = 256 * 1024  # bytes/s: a 100 MiB chart layer gets 400 s more
TOKEN_LIFETIME_DEFAULT = 60  # seconds, when the token service gives no expires_in
MAX_LIST_BYTES = 4 * 1024 * 1024  # one page of _catalog or a tags list
LIST_PAGE_SIZE = 1000
MAX_LIST_PAGES = 100_000  # a registry whose Link never ends must not keep a crawl going forever
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Fetched:
    media_type: str
    body: bytes


class RegistryClient:
    def __init__(self, base_url: str, username: str | None = None, password: str | None = None, pool_size: int = 10):
        self.base_url = base_url.rstrip("/")
        self._hostname = urlsplit(self.base_url).hostname
        self._credentials = (username, password) if username else None
        self._session = requests.Session()
        self._session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = "ocicat"
        # Bodies are read raw (see Body) and their digests checked on the exact bytes.
        self._session.headers["Accept-Encoding"] = "identity"
        self._scheme: str | None = None  # "basic" or "bearer" once the registry has said
        self._bearer: dict | None = None  # the challenge's realm and service
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    # -- public API -------------------------------------------------------------

    def get_manifest(self, repository: str, digest: str) -> Fetched:
        with self._open(repository, f"manifests/{digest}", digest, MAX_MANIFEST_BYTES, {"Accept": MANIFEST_ACCEPT}) as body:
            return Fetched(media_type=body.media_type, body=body.read_all())

    def get_tagged_manifest(self, repository: str, tag: str) -> tuple[str, Fetched]:
        """The manifest a tag points at now, with its digest; NotFound if the tag is gone.

        The digest is the one the registry names in ``Docker-Content-Digest``,
        checked against the body like any fetch (without that header, the
        body's own sha256, which is how the registry computes it).
        """
        response = self._request("GET", repository, f"manifests/{quote(tag)}", {"Accept": MANIFEST_ACCEPT}, stream=True)
        with response:
            if response.status_code == 404:
                raise NotFound(f"{repository}:{tag}")
            _raise_for_status(response)
            named = response.headers.get("Docker-Content-Digest", "")
            body = Body(response, named if DIGEST_RE.match(named) else None, MAX_MANIFEST_BYTES, f"manifest {tag}")
            content = body.read_all()
            digest = named if DIGEST_RE.match(named) else "sha256:" + hashlib.sha256(content).hexdigest()
            return digest, Fetched(media_type=body.media_type, body=content)

    def has_manifest(self, repository: str, digest: str) -> bool:
        """Whether the registry still has the manifest (a HEAD: no body)."""
        if not DIGEST_RE.match(digest):
            raise PermanentError(f"not a digest: {digest[:100]!r}")
        response = self._request("HEAD", repository, f"manifests/{digest}", {"Accept": MANIFEST_ACCEPT})
        with response:
            if response.status_code == 404:
                return False
            _raise_for_status(response)
            return True

    def list_repositories(self, page_size: int = LIST_PAGE_SIZE) -> Iterator[str]:
        """Every repository name in ``_catalog``, in the registry's (lexical) order, page by page."""
        yield from self._pages(None, "_catalog", "repositories", page_size)

    def list_tags(self, repository: str, page_size: int = LIST_PAGE_SIZE) -> Iterator[str]:
        """Every tag of ``repository``; NotFound if the registry does not know the repository."""
        yield from self._pages(repository, "tags/list", "tags", page_size)

    def get_blob(self, repository: str, digest: str, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
        with self.open_blob(repository, digest, max_bytes) as body:
            return body.read_all()

    def open_blob(self, repository: str, digest: str, max_bytes: int, min_rate: int = MIN_TRANSFER_RATE):
        """A blob as a stream, for a consumer that must not hold it all in memory (chart layers).

        Call ``verify()`` on it after a successful read: the digest can only be
        checked once every byte has been seen. ``min_rate``: the slowest transfer
        (bytes/s) the whole body is given time for; a consumer that passes it on to
        a client of its own goes at that client's pace and gives a lower one.
        """
        return self._open(repository, f"blobs/{digest}", digest, max_bytes, {}, min_rate)

    def delete_manifest(self, repository: str, reference: str, bearer: str | None = None) -> None:
        """Delete a manifest (by digest) or a tag; NotFound if the registry has neither.

        With ``bearer`` (a caller's own registry token) the registry checks the
        caller's rights itself and a refusal is ``Refused``; without it, ocicat's
        own credentials are used. Any other refusal (deletes disabled, tag
        deletes unsupported: Distribution 2.8 deletes by digest only) is a
        PermanentError with the registry's words.
        """
        response = self._request("DELETE", repository, f"manifests/{quote(reference)}", {}, action="delete",
                                 authorization=None if bearer is None else f"Bearer {bearer}")
        with response:
            if response.status_code == 404:
                raise NotFound(f"{repository}:{reference}")
            if bearer is not None and response.status_code in (401, 403):
                raise Refused(f"the registry refused the caller's token: HTTP {response.status_code}")
            _raise_for_status(response)

    # -- plumbing ----------------------------------------------------------------

    def _pages(self, repository: str | None, path: str, key: str, page_size: int) -> Iterator[str]:
        """Follow a paginated list (``n``/``last``, and the ``Link`` header's ``rel="next"``).

        Only the ``last`` parameter is taken from a Link: the next URL is
        rebuilt from the configured base, never followed as given (SSRF, as
        with event URLs). A registry without pagination sends everything on
        the first page and no Link.
        """
        last = None
        for _ in range(MAX_LIST_PAGES):
            query = f"n={page_size}" + (f"&last={quote(last, safe='')}" if last else "")
            response = self._request("GET", repository, f"{path}?{query}", {"Accept": "application/json"}, stream=True,
                                     scope="registry:catalog:*" if repository is None else None)
            with response:
                if response.status_code == 404:
                    raise NotFound(repository or "_catalog")
                _raise_for_status(response)
                raw = Body(response, None, MAX_LIST_BYTES, path).read_all()
                following = response.links.get("next", {}).get("url")
            try:
                names = json.loads(raw).get(key) or []
            except (ValueError, AttributeError):
                raise TransientError(f"{path}: the registry answered something that is not a list") from None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise TransientError(f"{path}: the registry answered a malformed {key} list")
            yield from names
            following_last = parse_qs(urlsplit(following).query).get("last", [None])[0] if following else None
            if not names or not following_last or following_last == last:
                return
            last = following_last
        raise TransientError(f"{path}: more than {MAX_LIST_PAGES} pages")

    @contextmanager
    def _open(self, repository: str, path: str, digest: str, max_bytes: int, headers: dict,
              min_rate: int = MIN_TRANSFER_RATE) -> Iterator["Body"]:
        # Digests come from manifests (untrusted): anything but a plain digest could
        # walk the URL elsewhere on the registry ("sha256:x/../../_catalog").
        if not DIGEST_RE.match(digest):
            raise PermanentError(f"not a digest ocicat can fetch and verify: {digest[:100]!r}")
        response = self._request("GET", repository, path, headers, stream=True)
        with response:
            if response.status_code == 404:
                raise NotFound(f"{repository}@{digest}")
            _raise_for_status(response)
            yield Body(response, digest, max_bytes, path, min_rate)

    def _request(self, method: str, repository: str | None, path: str, headers: dict, stream: bool = False,
                 action: str = "pull", authorization: str | None = None, scope: str | None = None):
        """One request with ocicat's credentials (learning the scheme from a 401), or with ``authorization`` as given.

        ``repository`` None: ``path`` is below ``/v2/`` itself (``_catalog``, whose token scope is given).
        """
        url = f"{self.base_url}/v2/{path}" if repository is None else f"{self.base_url}/v2/{quote(repository)}/{path}"
        scope = scope or f"repository:{repository}:{action}"
        for attempt in range(1 if authorization else 2):
            request_headers = dict(headers)
            auth = authorization or self._authorization(scope)
            if auth:
                request_headers["Authorization"] = auth
            try:
                response = self._session.request(
                    method, url, headers=request_headers, timeout=TIMEOUT, stream=stream, allow_redirects=True
                )
            except requests.RequestException as exc:
                metrics.REGISTRY_ERRORS.labels("connection").inc()
                raise TransientError(f"{method} {_path(url)}: {type(exc).__name__}: {exc}") from exc
            # Only the registry itself may ask for credentials: a 401 from a
            # redirect target (blob storage) must not steer them to its realm.
            if response.status_code != 401 or attempt == 1 or response.history or authorization:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            if not self._accept_challenge(challenge, scope):
                return response
        return response

    def _authorization(self, scope: str) -> str | None:
        if self._scheme == "basic" and self._credentials:
            user, password = self._credentials
            return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        if self._scheme == "bearer":
            with self._lock:
                cached = self._tokens.get(scope)
            if cached and cached[1] > time.monotonic():
                return f"Bearer {cached[0]}"
            return f"Bearer {self._fetch_token(scope)}"
        return None

    def _accept_challenge(self, challenge: str, scope: str) -> bool:
        """Learn the auth scheme from a 401; False if retrying cannot help."""
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic" and self._credentials and self._scheme != "basic":
            self._scheme = "basic"
            return True
        if scheme == "bearer":
            params = dict(_CHALLENGE_PARAM.findall(challenge))
            realm = urlsplit(params.get("realm", ""))
            # Credentials go to a token service over TLS, or to the registry's own host.
            if realm.scheme != "https" and not (realm.scheme == "http" and realm.hostname == self._hostname):
                return False
            with self._lock:
                self._bearer = {"realm": params["realm"], "service": params.get("service")}
                self._tokens.pop(scope, None)  # a cached token was refused: get a new one
            self._scheme = "bearer"
            return True
        return False

    def _fetch_token(self, scope: str) -> str:
        """Docker token auth (distribution docs spec/auth/token.md), Basic credentials if configured."""
        bearer = self._bearer or {}
        params = {"scope": scope}
        if bearer.get("service"):
            params["service"] = bearer["service"]
        try:
            response = self._session.get(
                bearer["realm"], params=params, auth=self._credentials, timeout=TIMEOUT, stream=True
            )
        except requests.RequestException as exc:
            raise TransientError(f"token service: {type(exc).__name__}: {exc}") from exc
        with response:
            _raise_for_status(response)
            body = Body(response, None, MAX_TOKEN_BYTES, "token response").read_all()
            try:
                doc = json.loads(body)
                token = doc.get("token") or doc.get("access_token")
                lifetime = min(int(doc.get("expires_in") or TOKEN_LIFETIME_DEFAULT), 86400)
            except (ValueError, AttributeError, TypeError, OverflowError):
                raise TransientError("token service answered something that is not a token") from None
        if not isinstance(token, str) or not token:
            raise TransientError("token service answered without a token")
        # Renew a little early so a token never expires in flight.
        with self._lock:
            self._tokens[scope] = (token, time.monotonic() + max(1, lifetime - 5))
        return token


class Body:
    """A response body read as a file: capped in size, bounded in time, hashed as it goes.

    Reads use ``read1`` on the raw stream, which returns whatever has arrived
    (``iter_content`` would wait for a full chunk), so the deadline holds even
    against a server that trickles bytes.
    """

    def __init__(self, response: requests.Response, digest: str | None, max_bytes: int, what: str,
                 min_rate: int = MIN_TRANSFER_RATE):
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise PermanentError(f"{what} is {declared} bytes, over the {max_bytes} byte limit")
        self.media_type = storable(response.headers.get("Content-Type", "").split(";")[0].strip())[:255]
        self._raw = response.raw
        self._digest = digest
        self._hash = hashlib.new(digest.partition(":")[0]) if digest else None
        self._max_bytes = max_bytes
        self._what = what
        self._total = 0
        # The whole body must arrive in time: a fixed allowance plus what the
        # declared size needs at a slow but honest transfer rate.
        allowance = READ_DEADLINE_SECONDS + (int(declared) if declared and declared.isdigit() else 0) / min_rate
        self._deadline = time.monotonic() + allowance
        self._allowance = allowance

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self._raw.read1(64 * 1024 if size is None or size < 0 else min(size, 1024 * 1024))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"reading {self._what}: {type(exc).__name__}: {exc}") from exc
        self._total += len(chunk)
        if self._total > self._max_bytes:
            raise PermanentError(f"{self._what} is over the {self._max_bytes} byte limit")
        if time.monotonic() > self._deadline:
            raise TransientError(f"{self._what} took over {self._allowance:.0f}s to arrive")
        if self._hash is not None:
            self._hash.update(chunk)
        return chunk

    def read_all(self) -> bytes:
        chunks = []
        while chunk := self.read():
            chunks.append(chunk)
        self.verify()
        return b"".join(chunks)

    def verify(self) -> None:
        """Read what is left, then check the digest of everything read."""
        while self.read():
            pass
        if self._digest is not None and f"{self._digest.partition(':')[0]}:{self._hash.hexdigest()}" != self._digest:
            raise PermanentError(f"digest mismatch: expected {self._digest}, content is "
                                 f"{self._digest.partition(':')[0]}:{self._hash.hexdigest()}")


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    metrics.REGISTRY_ERRORS.labels(str(status)).inc()
    where = f"{response.request.method} {_path(response.url)}"
    if status in (401, 403, 408, 429) or status >= 500:
        # 401/403 after authenticating is a credentials problem an operator
        # can fix; retrying (and later replaying) then succeeds.
        raise TransientError(f"{where}: HTTP {status}")
    raise PermanentError(f"{where}: HTTP {status}: {_excerpt(response)}")


def _path(url: str) -> str:
    """What an error names of a request: its path. The registry's address is configuration, not news to
    whoever reads the error (an API caller, a dead letter), and a storage backend's redirect URL can carry a
    signature in its query."""
    return urlsplit(url).path


def _excerpt(response: requests.Response, limit: int = 300) -> str:
    """The start of an error body, read without pulling in the rest (it may be huge or endless)."""
    try:
        head = response.raw.read1(limit)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
        return ""
    return head[:limit].decode(response.encoding or "utf-8", errors="replace")
