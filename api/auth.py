"""Who is asking: the caller's rights, from an ocicat API token or the registry's own bearer token.

Every read filters in SQL by the caller's ``Visibility`` (ocicat.catalog.visibility),
so a repository the caller may not see is absent from lists, details, search
hits, facets and counts alike, and answers 404 like one that does not exist.

Two kinds of bearer token are accepted:
- ocicat API tokens (``ocicat_<id>_<secret>``, ocicat.accounts): a user's
  roles on path prefixes (those an administrator granted, and for a user made
  by sign-in those the identity provider gives, asked again when due);
- optionally, the JWTs the registry's token service issues (Distribution's
  token spec): their ``access`` claim names repositories with actions, which
  map to view (``pull``) and delete (``delete``) rights, so a frontend can
  call ocicat with the token it already holds for the registry.
Either comes as ``Bearer <token>`` or as HTTP Basic with the token as the password.
Anything else in ``Authorization`` is refused (401), never read as anonymous.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ocicat import accounts
from ocicat.catalog.visibility import Visibility
from ocicat.config import Config, ConfigError
from ocicat.oci.names import REPOSITORY_RE
from ocicat.sign_in import IdentityProvider

log = logging.getLogger(__name__)

JWT_ALGORITHMS = ["RS256", "ES256"]  # what registry token services sign with; never "none" or HMAC
MAX_TOKEN_LENGTH = 16 * 1024
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


class Unauthorized(Exception):
    """The credentials given are not valid; the message is safe to show (it reveals nothing)."""


@dataclass(frozen=True)
class Principal:
    """What one caller may do: see what ``view`` covers, and delete in ``delete_names`` (those paths
    themselves) and below ``delete_prefixes`` (everything strictly below them)."""

    view: Visibility
    user: str | None = None
    delete_names: frozenset[str] = field(default_factory=frozenset)
    delete_prefixes: frozenset[str] = field(default_factory=frozenset)
    # The caller's own registry token, if that is how they signed in: deletes go to the registry with it,
    # so the registry checks them too, instead of with ocicat's credentials.
    registry_token: str | None = field(default=None, repr=False)
    # A user made by sign-in whose roles are due to be asked of the provider again: api.caller asks, outside the
    # request's transaction, and resolves the caller anew.
    recheck_user: int | None = None

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    @property
    def admin(self) -> bool:
        return self.view.everything

    def may_delete(self, repository: str) -> bool:
        return self.admin or repository in self.delete_names or bool(_ancestors(repository) & self.delete_prefixes)


def anonymous(default_public: bool) -> Principal:
    return Principal(view=Visibility(default_public))


def _ancestors(repository: str) -> set[str]:
    """As path_ancestors() in SQL (migrations/functions): 'a/b/c' -> {'', 'a', 'a/b'}."""
    parts = repository.split("/")
    return {"/".join(parts[:n]) for n in range(len(parts))}


# Principals of signed-in users, by user id, with what they were built from (the grants version, and whether the
# identity provider's roles counted): a user's roles are read again only after that changed (ocicat.accounts.grants).
# Bounded: cleared when full.
_principals: dict[int, tuple[tuple[int, bool], Principal]] = {}
_principals_lock = threading.Lock()
MAX_CACHED_PRINCIPALS = 10_000


def from_account(cur, account: accounts.Account, default_public: bool,
                 provider: IdentityProvider | None = None) -> Principal:
    """The principal of a user, marked for a recheck when they were made by sign-in and their roles are due to be
    asked of the provider again (ocicat.sign_in)."""
    principal = _principal(cur, account, default_public)
    if provider is not None and provider.due(account, datetime.now(timezone.utc)):
        return replace(principal, recheck_user=account.user_id)
    return principal


def _principal(cur, account: accounts.Account, default_public: bool) -> Principal:
    built_from = (account.grants_version, account.sign_in_live)
    with _principals_lock:
        cached_from, principal = _principals.get(account.user_id, (None, None))
    if cached_from == built_from and principal.admin == account.admin and principal.user == account.name:
        return principal
    roles = accounts.grants(cur, account.user_id)
    view = frozenset(p for p, level in roles.items() if level >= accounts.VIEW_LEVEL)
    delete = frozenset(p for p, level in roles.items() if level >= accounts.DELETE_LEVEL)
    principal = Principal(view=Visibility(default_public, account.admin, names=view, prefixes=view), user=account.name,
                          delete_names=delete, delete_prefixes=delete)
    with _principals_lock:
        if len(_principals) >= MAX_CACHED_PRINCIPALS:
            _principals.clear()
        _principals[account.user_id] = (built_from, principal)
    return principal


class RegistryTokens:
    """Verifies the registry token service's JWTs: signature (RS256/ES256), issuer, audience, lifetime."""

    def __init__(self, issuer: str, audience: str, keys_file: str, nested: bool = False, default_public: bool = False):
        self.issuer = issuer
        self.audience = audience
        self.nested = nested  # "group/*" access entries cover what is below group (GitLab)
        self.default_public = default_public
        self._keys, self._jwks = _load_keys(keys_file)

    @classmethod
    def from_config(cls, config: Config) -> "RegistryTokens | None":
        if not config.registry_token_issuer:
            return None
        return cls(config.registry_token_issuer, config.registry_token_audience, config.registry_token_keys,
                   config.registry_token_nested, config.default_public)

    def principal(self, token: str) -> Principal:
        claims = self._verify(token)
        view, view_prefixes, delete, delete_prefixes = set(), set(), set(), set()
        for entry in claims.get("access") or []:
            if not isinstance(entry, dict) or entry.get("type") != "repository" or not isinstance(entry.get("name"), str):
                continue
            actions = entry.get("actions") if isinstance(entry.get("actions"), list) else []
            name = entry["name"]
            if name.endswith("/*"):
                # GitLab grants nested reads as "group/*": everything strictly below the group. Only
                # trusted when configured: a token service matching globs might grant a client's
                # literal request for "group/*" by a rule meant for single repositories.
                if not (self.nested and REPOSITORY_RE.match(name[:-2])):
                    continue
                names, prefixes = set(), {name[:-2]}
            elif REPOSITORY_RE.match(name):
                names, prefixes = {name}, set()
            else:
                continue
            if "pull" in actions or "*" in actions:
                view |= names
                view_prefixes |= prefixes
            if "delete" in actions or "*" in actions:
                delete |= names
                delete_prefixes |= prefixes
        subject = claims.get("sub") if isinstance(claims.get("sub"), str) else ""
        return Principal(view=Visibility(self.default_public, names=frozenset(view), prefixes=frozenset(view_prefixes)),
                         user=f"registry:{subject}", delete_names=frozenset(delete),
                         delete_prefixes=frozenset(delete_prefixes), registry_token=token)

    def _verify(self, token: str) -> dict:
        options = {"require": ["exp", "iss", "aud"]}
        try:
            keys = self._keys
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                keys = [k.key for k in self._jwks.keys if k.key_id == kid] if kid else [k.key for k in self._jwks.keys]
            for key in keys:
                try:
                    return jwt.decode(token, key, algorithms=JWT_ALGORITHMS, issuer=self.issuer, audience=self.audience,
                                      options=options, leeway=30)
                except jwt.InvalidSignatureError:
                    continue  # signed by another key of the bundle, perhaps
                except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError, ValueError, TypeError):
                    continue  # an EC key given an RSA signature, or the reverse
        except jwt.PyJWTError as exc:
            log.info("refused a registry token: %s", exc)
            raise Unauthorized("invalid or expired token") from None
        log.info("refused a registry token: no configured key verifies it")
        raise Unauthorized("invalid or expired token")


def _load_keys(path: str) -> tuple[list, jwt.PyJWKSet | None]:
    """Public keys from a JWKS file, or from PEM public keys and certificates (Distribution's rootcertbundle)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"OCICAT_REGISTRY_TOKEN_KEYS: cannot read {path}: {exc}") from None
    if data.lstrip().startswith(b"{"):
        try:
            return [], jwt.PyJWKSet.from_dict(json.loads(data))
        except (ValueError, jwt.PyJWTError) as exc:
            raise ConfigError(f"OCICAT_REGISTRY_TOKEN_KEYS: {path} is not a usable JWKS: {exc}") from None
    keys = []
    for block in _PEM_BLOCK.finditer(data):
        try:
            if block.group(1) == b"CERTIFICATE":
                keys.append(x509.load_pem_x509_certificate(block.group(0)).public_key())
            elif block.group(1) == b"PUBLIC KEY":
                keys.append(load_pem_public_key(block.group(0)))
        except ValueError as exc:
            raise ConfigError(f"OCICAT_REGISTRY_TOKEN_KEYS: bad PEM block in {path}: {exc}") from None
    if not keys:
        raise ConfigError(f"OCICAT_REGISTRY_TOKEN_KEYS: {path} holds no public key or certificate")
    return keys, None


def authenticate(cur, header: str, registry_tokens: RegistryTokens | None, default_public: bool,
                 provider: IdentityProvider | None = None) -> Principal:
    """The principal for an ``Authorization`` header; raises Unauthorized for any credential that is not valid.

    ``Bearer <token>``, or ``Basic`` with the token as the password (any user name), for clients that speak only
    Basic: feed readers, Helm's repository commands.
    """
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "basic" and len(token) <= 2 * MAX_TOKEN_LENGTH:
        try:
            _, colon, token = base64.b64decode(token, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("invalid or expired token") from None
        if not colon:
            raise Unauthorized("invalid or expired token")
    elif scheme.lower() != "bearer":
        raise Unauthorized("invalid or expired token")
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid or expired token")
    if token.startswith(accounts.TOKEN_PREFIX):
        account = accounts.authenticate(cur, token)
        if account is None:
            raise Unauthorized("invalid or expired token")
        return from_account(cur, account, default_public, provider)
    if registry_tokens is not None and token.count(".") == 2:
        return registry_tokens.principal(token)
    raise Unauthorized("invalid or expired token")


def from_session(cur, cookie: str, default_public: bool, provider: IdentityProvider | None) -> tuple[Principal, str]:
    """The principal of a browser session's cookie, and the session's CSRF token; Unauthorized when it is not live."""
    found = accounts.session_account(cur, cookie)
    if found is None:
        raise Unauthorized("your session has ended; sign in again")
    account, csrf_token = found
    return from_account(cur, account, default_public, provider), csrf_token
