"""Sign-in with an OpenID Connect provider: the roles a user's groups give them, re-read while they stay signed in.

The browser's part of the sign-in (authorization code with PKCE, state, nonce,
the ID token's signature, ``iss`` and ``aud``) is Authlib's, in api.sign_in.
This module holds what comes after, for the API and its sessions alike:

- the roles a user gets from the provider's answers: the administrator's rules
  (claim, pattern, path, role), and GitLab's claims and API when the provider is
  GitLab (see ``gitlab_roles``);
- the tokens that let ocicat ask again (refresh and access tokens), kept
  encrypted, so that a user removed from a group at the provider loses the
  role at the next check (every ``refresh_seconds``), in their browser session
  and through the API tokens they made alike.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import accounts
from .accounts import LEVELS, AccountError, normalize_path
from .config import OidcConfig
from .role_rules import ADMIN, RoleRule

log = logging.getLogger(__name__)

MAX_CLAIM_VALUES = 10_000  # values of one claim read; a provider answering more is cut, and the cut logged
GITLAB_CLAIM = "https://gitlab.org/claims/groups/"
# GitLab's role claims list *direct* memberships at exactly that level (no Reporter or Guest claim): each covers the
# group's path and everything below it, as the registry's permissions do.
GITLAB_ROLE_CLAIMS = {f"{GITLAB_CLAIM}{role}": role for role in ("owner", "maintainer", "developer")}
GITLAB_REPORTER = 20  # Gitlab::Access::REPORTER: view and pull
GITLAB_MAX_PAGES = 100  # of 100 groups or projects each: 10,000 readable paths
GITLAB_SECONDS = 60  # for all of GitLab's pages together: past it, the answer counts as none
# How long one check may take (discovery, refresh, userinfo, GitLab's pages, each bounded): no other process starts
# one for the same user meanwhile.
CHECK_LEASE = timedelta(minutes=3)
METADATA_SECONDS = 3600  # discovery is read again after this long (a rotated jwks_uri or endpoint is picked up)
TIMEOUT = 10


class ProviderError(Exception):
    """The provider could not be asked (down, slow, answering nonsense): the roles held are kept for a while.
    ``status`` is the HTTP status it answered with, if it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class SignInRefused(Exception):
    """The provider refused to vouch for the user any more (refresh token revoked or expired): their roles go."""


@dataclass
class Roles:
    """What the provider's answers give a user: a role per path (the highest, where several rules meet) and admin."""

    paths: dict[str, str]
    admin: bool = False

    @classmethod
    def none(cls) -> "Roles":
        return cls({})

    def add(self, path: str, role: str) -> None:
        """Give ``role`` on ``path`` (a group or project path, lowercased as the registry names it) unless a higher
        role is held there. A value that is no repository path is skipped, and so is one that would name the whole
        registry: only a rule can give that (``add_everywhere``), never a claim's value."""
        if role == ADMIN:
            self.admin = True
            return
        try:
            normalized = normalize_path(path.lower()) if path.strip("/") else None
        except AccountError:
            normalized = None
        if normalized is None:
            log.info("sign-in: skipped %r, which is no repository path", path[:200])
            return
        self._hold(normalized, role)

    def add_everywhere(self, role: str) -> None:
        if role == ADMIN:
            self.admin = True
        else:
            self._hold("", role)

    def _hold(self, path: str, role: str) -> None:
        if LEVELS[role] > LEVELS.get(self.paths.get(path, ""), 0):
            self.paths[path] = role


def claim_values(claims: dict, name: str) -> list[str]:
    """A claim's values: a list of strings, or one string; anything else counts as absent."""
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    if len(value) > MAX_CLAIM_VALUES:
        log.warning("sign-in: claim %s holds %d values; the first %d are read", name, len(value), MAX_CLAIM_VALUES)
    return [v for v in value[:MAX_CLAIM_VALUES] if isinstance(v, str)]


def apply_rules(roles: Roles, claims: dict, rules: tuple[RoleRule, ...]) -> None:
    for rule in rules:
        for value in claim_values(claims, rule.claim):
            path = rule.path_for(value)
            if path is None:
                continue
            if rule.whole_registry:
                roles.add_everywhere(rule.role)
            else:
                roles.add(path, rule.role)


def gitlab_roles(roles: Roles, claims: dict, readable: set[str] | None) -> None:
    """GitLab's claims as the registry's permissions: Developer and above from the role claims (userinfo's, not the
    ID token's); Reporter on the groups and projects GitLab's API says the user can read at Reporter and above
    (``readable``), or, with no API to ask (None), on every group of the ``groups`` claim (the fallback rule: member
    of the group means Reporter, which also counts Guests)."""
    for claim, role in GITLAB_ROLE_CLAIMS.items():
        for path in claim_values(claims, claim):
            roles.add(path, role)
    for path in claim_values(claims, "groups") if readable is None else sorted(readable):
        roles.add(path, "reporter")


class Sealer:
    """Encrypts the provider's tokens kept in the database (Fernet, keyed from OCICAT_SECRET_KEY with HKDF), so a
    copy of the database alone does not let anyone act as the users at the provider."""

    def __init__(self, secret_key: str):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ocicat sign-in tokens").derive(
            secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, value: str | None) -> bytes | None:
        return None if value is None else self._fernet.encrypt(value.encode())

    def open(self, sealed: bytes | None) -> str | None:
        if sealed is None:
            return None
        try:
            return self._fernet.decrypt(bytes(sealed)).decode()
        except InvalidToken:  # sealed under another OCICAT_SECRET_KEY: as good as none
            return None


class IdentityProvider:
    """The configured OpenID Connect provider, as the API asks it after the browser's part of the sign-in: discovery
    (cached), userinfo, refresh, GitLab's API; the roles all of it gives a user, and their checks while signed in."""

    def __init__(self, config: OidcConfig, secret_key: str):
        self.config = config
        self.sealer = Sealer(secret_key)
        self._metadata: dict | None = None
        self._metadata_at = 0.0
        self._lock = threading.Lock()
        self.http = requests.Session()

    def endpoint(self, name: str) -> str:
        """An endpoint's URL from the provider's discovery document (read again after METADATA_SECONDS)."""
        with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_SECONDS:
                metadata = self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
                self._metadata = metadata if isinstance(metadata, dict) else {}
                self._metadata_at = time.monotonic()
            url = self._metadata.get(name)
        if not isinstance(url, str):
            raise ProviderError(f"the provider's discovery document names no {name}")
        return url

    def _get_json(self, url: str, token: str | None = None):
        headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        try:
            response = self.http.get(url, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise ProviderError(f"{url}: {exc}") from None
        if not response.ok:
            raise ProviderError(f"{url} answered {response.status_code}", response.status_code)
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"{url} answered with no JSON") from None

    def userinfo(self, access_token: str) -> dict:
        try:
            claims = self._get_json(self.endpoint("userinfo_endpoint"), access_token)
        except ProviderError as exc:
            # RFC 6750 3.1: 401 is the token's end (invalid_token). Anything else, 403 (insufficient_scope, a
            # setting's fault) included, says nothing about the user.
            if exc.status == 401:
                raise SignInRefused("userinfo refused the access token") from None
            raise
        if not isinstance(claims, dict):
            raise ProviderError("userinfo is not a JSON object")
        return claims

    def refresh(self, refresh_token: str) -> dict:
        """A new access token (and perhaps a new refresh token) for an old refresh token; SignInRefused when the
        provider will not give one any more."""
        client = OAuth2Session(self.config.client_id, self.config.client_secret, timeout=TIMEOUT)
        try:
            token = client.refresh_token(self.endpoint("token_endpoint"), refresh_token=refresh_token)
        except OAuthError as exc:  # RFC 6749 5.2: invalid_grant is the refresh token's end; the rest is not the user's
            if exc.error == "invalid_grant":
                raise SignInRefused(f"refresh refused: {exc.error}") from None
            raise ProviderError(f"refresh failed: {exc.error}: {exc.description}") from None
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise ProviderError(f"refresh failed: {exc}") from None
        if not isinstance(token.get("access_token"), str):
            raise ProviderError("refresh failed: the token endpoint sent no access token")
        return token

    def answer(self, access_token: str) -> tuple[dict, Roles]:
        """What the provider says of the user now: their userinfo claims, and the roles those (and, for GitLab, its
        API asked with ``access_token``) give."""
        claims = self.userinfo(access_token)
        roles = Roles.none()
        if self.config.gitlab:
            readable = self._gitlab_readable(access_token) if self.config.gitlab_reporters == "api" else None
            gitlab_roles(roles, claims, readable)
        apply_rules(roles, claims, self.config.role_rules)
        return claims, roles

    def _gitlab_readable(self, access_token: str) -> set[str]:
        """The groups and projects where GitLab gives the user Reporter or more (directly, inherited or shared),
        asked with the user's own token (scope read_api), page by page, within GITLAB_SECONDS in all. Only pages of
        the configured GitLab are read: the token goes wherever a ``Link: next`` would send it."""
        paths = set()
        origin = urlsplit(self.config.gitlab_api_url)[:2]
        deadline = time.monotonic() + GITLAB_SECONDS
        for resource, key in (("groups", "full_path"), ("projects", "path_with_namespace")):
            url = f"{self.config.gitlab_api_url}/api/v4/{resource}"
            params = {"min_access_level": GITLAB_REPORTER, "per_page": 100}
            if resource == "projects":
                params["simple"] = "true"
            for _ in range(GITLAB_MAX_PAGES):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProviderError(f"GitLab API: listing the user's {resource} took over {GITLAB_SECONDS}s")
                try:
                    response = self.http.get(url, params=params, headers={"Authorization": f"Bearer {access_token}"},
                                             timeout=min(TIMEOUT, left))
                except requests.RequestException as exc:
                    raise ProviderError(f"GitLab API: {exc}") from None
                if not response.ok:
                    raise ProviderError(f"GitLab API {resource} answered {response.status_code} (does the "
                                        "application have the read_api scope?)")
                try:
                    items = response.json()
                except ValueError:
                    raise ProviderError(f"GitLab API {resource} answered with no JSON") from None
                if not isinstance(items, list):
                    raise ProviderError(f"GitLab API {resource} answered with no list")
                paths.update(item[key] for item in items if isinstance(item, dict) and isinstance(item.get(key), str))
                url, params = response.links.get("next", {}).get("url"), None
                if not url:
                    break
                if urlsplit(url)[:2] != origin:
                    raise ProviderError(f"GitLab API {resource}: the next page is on another site: {url[:200]}")
            else:
                log.warning("sign-in: GitLab lists more than %d pages of %s; the rest is not read", GITLAB_MAX_PAGES,
                            resource)
        return paths

    @property
    def lasting(self) -> timedelta:
        """How long the provider's answer counts: past it, roles it has not confirmed again lapse."""
        return timedelta(seconds=self.config.stale_seconds)

    def complete(self, db, token: dict) -> int:
        """The user a finished sign-in is (made on their first), with their roles as the provider gives them now.
        ``token`` is Authlib's: the ID token's claims, already checked, under ``userinfo``. The provider is asked
        before the transaction that writes the answer, which holds no connection while it waits."""
        identity = token["userinfo"]
        claims, roles = self.answer(token["access_token"])
        if claims.get("sub") != identity["sub"]:  # OpenID Connect Core 5.3.2: else userinfo may be someone else's
            raise ProviderError("userinfo names another subject than the ID token")
        with db.transaction() as cur:
            user_id = accounts.signed_in_user(cur, identity["iss"], identity["sub"], user_name(claims, identity["sub"]))
            accounts.lock_sign_in(cur, user_id)
            accounts.set_sign_in_roles(cur, user_id, roles.paths, roles.admin, self.lasting)
            accounts.record_answer(cur, user_id, claims, self.sealer.seal(token.get("refresh_token")),
                                   self.sealer.seal(token["access_token"]), signed_in=True)
        return user_id

    def due(self, account: accounts.Account, now: datetime) -> bool:
        """Whether a user made by sign-in should have their roles asked of the provider again."""
        return account.asked_at is not None and (now - account.asked_at).total_seconds() > self.config.refresh_seconds

    def recheck(self, db, user_id: int) -> None:
        """Ask the provider again what the user's roles are (with their refresh token, else their access token while
        it lasts), in three steps so that no transaction stays open while the provider is asked: claim the check (a
        lease), ask, write the answer, unless the user signed in meanwhile (that answer is newer). Refused: the
        roles go, and so do the user's sessions. Not answered: the roles held count until ``stale_seconds`` after
        the last answer (users.sign_in_until), then lapse until the provider answers again."""
        with db.transaction() as cur:
            held = accounts.claim_check(cur, user_id, timedelta(seconds=self.config.refresh_seconds), CHECK_LEASE)
        if held is None:
            return  # checked a moment ago, or being checked by another request now
        refresh, access = self.sealer.open(held["refresh_token"]), self.sealer.open(held["access_token"])
        refreshed = answer = refused = None
        try:
            if refresh:
                refreshed = self.refresh(refresh)
                refresh, access = refreshed.get("refresh_token"), refreshed["access_token"]
            elif not access:
                raise ProviderError("no token of the user's is held: they must sign in again")
            answer = self._answer_for_check(access, refreshed is not None)
        except SignInRefused as exc:
            refused = exc
        except Exception as exc:  # noqa: BLE001 - whatever went wrong in asking, the caller's request goes on
            log.warning("sign-in: cannot ask the provider about user %d (%s): the roles it gave at %s count until "
                        "%s after that", user_id, exc, held["answered_at"], self.lasting,
                        exc_info=not isinstance(exc, ProviderError))  # a fault of ocicat's own: with its traceback
        with db.transaction() as cur:
            if accounts.lock_sign_in(cur, user_id) != held["signed_in_at"]:
                return  # the user signed in while the provider was asked here: theirs is the newer answer
            if refused is not None:
                log.info("sign-in: the provider no longer vouches for user %d (%s): their roles from it are removed",
                         user_id, refused)
                accounts.forget_sign_in(cur, user_id)
            elif answer is None:  # a rotated refresh token is kept even so: the provider has spent the old one
                kept = (self.sealer.seal(refresh), self.sealer.seal(access)) if refreshed is not None else (None, None)
                accounts.end_check(cur, user_id, *kept)
            else:
                claims, roles = answer
                accounts.set_sign_in_roles(cur, user_id, roles.paths, roles.admin, self.lasting)
                accounts.record_answer(cur, user_id, claims, self.sealer.seal(refresh), self.sealer.seal(access),
                                       signed_in=False)

    def _answer_for_check(self, access_token: str, refreshed: bool) -> tuple[dict, Roles]:
        """The provider's answer at a check. An access token refused without a refresh token behind it (a provider
        that gives refresh tokens only for offline_access) has merely expired: not answered, rather than refused."""
        try:
            return self.answer(access_token)
        except SignInRefused:
            if refreshed:
                raise
            raise ProviderError("the access token has expired and the provider gave no refresh token (does it need "
                                "the offline_access scope?): the user must sign in again") from None


def user_name(claims: dict, subject: str) -> str:
    """The name a user made by sign-in gets (accounts.signed_in_user makes it unique): the one they go by at the
    provider, or their email address only when the provider says it verified it, else their subject."""
    for key in ("preferred_username", "nickname"):
        if isinstance(claims.get(key), str) and claims[key]:
            return claims[key]
    if claims.get("email_verified") is True and isinstance(claims.get("email"), str):
        return claims["email"]
    return subject
