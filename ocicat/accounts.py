"""Users, API tokens and roles on path prefixes: every read and write of them.

The model follows the registry's: a role granted on a path covers that path
and everything below it (guest < reporter < developer < maintainer < owner);
reporter and above may view and download, developer and above may also
publish and delete; administrators may do everything. Public and private
paths are the catalog's (ocicat.catalog.visibility). The CLI writes all of
this and the API reads it (api.auth), both through this module.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from .oci.names import REPOSITORY_RE

ROLES = ("guest", "reporter", "developer", "maintainer", "owner")
LEVELS = {role: 10 * (i + 1) for i, role in enumerate(ROLES)}  # as role_level() in SQL (migrations/functions)
VIEW_LEVEL = LEVELS["reporter"]
DELETE_LEVEL = LEVELS["developer"]

USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
TOKEN_PREFIX = "ocicat_"
TOKEN_RE = re.compile(r"^ocicat_([1-9][0-9]{0,17})_([A-Za-z0-9_-]{43})\Z")
_NO_SECRET = hashlib.sha256(b"no such token").digest()  # compared against when the id is unknown


class AccountError(ValueError):
    """A bad name, path, role or reference, said in words an operator can act on."""


def normalize_path(path: str) -> str:
    """A repository path prefix as stored: no leading or trailing slash, '' for the root.

    Only an explicit "/" names the root: an empty argument (a shell variable
    that was not set) must not grant a role on the whole registry.
    """
    if path == "/":
        return ""
    stripped = path.strip("/")
    if not (stripped and len(stripped) <= 255 and REPOSITORY_RE.match(stripped)):
        raise AccountError(f"not a repository path (use / for the whole registry): {path!r}")
    return stripped


def shown_path(path: str) -> str:
    return path or "/"


def user_id(cur, name: str) -> int:
    cur.execute("SELECT id FROM users WHERE name = %s", (name,))
    row = cur.fetchone()
    if row is None:
        raise AccountError(f"no user {name!r}")
    return row["id"]


# -- users -----------------------------------------------------------------------


def create_user(cur, name: str, admin: bool = False) -> None:
    if not USER_RE.match(name):
        raise AccountError(f"user names are 1 to 64 letters, digits and ._@- starting with a letter or digit, got {name!r}")
    cur.execute("INSERT INTO users (name, admin) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING RETURNING id", (name, admin))
    if cur.fetchone() is None:
        raise AccountError(f"user {name!r} exists already")


def delete_user(cur, name: str) -> None:
    """Remove a user with their tokens and grants."""
    cur.execute("DELETE FROM users WHERE id = %s", (user_id(cur, name),))


def list_users(cur) -> list[dict]:
    cur.execute(
        "SELECT u.name, u.admin, u.created_at,"
        " (SELECT count(*) FROM grants g WHERE g.user_id = u.id) AS grants,"
        " (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL"
        "   AND (t.expires_at IS NULL OR t.expires_at > now())) AS active_tokens"
        " FROM users u ORDER BY u.name"
    )
    return cur.fetchall()


# -- tokens ----------------------------------------------------------------------


def create_token(cur, user: str, description: str = "", expires_in: timedelta | None = None) -> tuple[int, str]:
    """A new token for ``user``: (id, the token). The token itself is never stored or shown again."""
    secret = secrets.token_urlsafe(32)
    cur.execute(
        "INSERT INTO api_tokens (user_id, description, secret_sha256, expires_at)"
        " VALUES (%s, %s, %s, now() + %s) RETURNING id",
        (user_id(cur, user), description, hashlib.sha256(secret.encode()).digest(), expires_in),
    )
    token_id = cur.fetchone()["id"]
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"


def list_tokens(cur, user: str | None = None) -> list[dict]:
    cur.execute(
        "SELECT t.id, u.name AS user, t.description, t.created_at, t.expires_at, t.revoked_at, t.last_used_at,"
        " t.expires_at <= now() AS expired"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE %(user)s::text IS NULL OR u.name = %(user)s ORDER BY t.id",
        {"user": user},
    )
    return cur.fetchall()


def revoke_token(cur, token_id: int) -> None:
    cur.execute("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s RETURNING 1", (token_id,))
    if cur.fetchone() is None:
        raise AccountError(f"no token {token_id}")


@dataclass(frozen=True)
class Account:
    """A signed-in user; ``grants_version`` changes whenever their roles do (see :func:`grants`)."""

    user_id: int
    name: str
    admin: bool
    grants_version: int


def authenticate(cur, token: str) -> Account | None:
    """The account behind a live token; None for anything else (unknown, forged, revoked, expired).

    The secret is compared in constant time, also when the id is unknown, so
    timing tells an attacker nothing about which ids or secrets exist.
    """
    match = TOKEN_RE.match(token)
    if match is None:
        return None
    token_id, secret = int(match.group(1)), match.group(2)
    cur.execute(
        "SELECT t.secret_sha256, t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AS live,"
        " t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' AS stale,"
        " u.id AS user_id, u.name, u.admin, u.grants_version"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = %s",
        (token_id,),
    )
    row = cur.fetchone()
    matches = hmac.compare_digest(hashlib.sha256(secret.encode()).digest(),
                                  bytes(row["secret_sha256"]) if row else _NO_SECRET)
    if not (row and matches and row["live"]):
        return None
    if row["stale"]:  # noted at most once a minute: a read should not become a write every time
        cur.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (token_id,))
    return Account(user_id=row["user_id"], name=row["name"], admin=row["admin"], grants_version=row["grants_version"])


def grants(cur, user_id: int) -> dict[str, int]:
    """A user's roles, path -> level. Read only when ``grants_version`` moved: a user with 1,000
    grants would otherwise cost more per request than the query they ask for (bench/api.py)."""
    cur.execute("SELECT path, role_level(role) AS level FROM grants WHERE user_id = %s", (user_id,))
    return {row["path"]: row["level"] for row in cur.fetchall()}


def _grants_changed(cur, user_id: int) -> None:
    cur.execute("UPDATE users SET grants_version = grants_version + 1 WHERE id = %s", (user_id,))


# -- roles -----------------------------------------------------------------------


def grant(cur, user: str, path: str, role: str) -> None:
    """Give ``user`` ``role`` on ``path`` and everything below it (replacing a role held there)."""
    if role not in LEVELS:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    holder = user_id(cur, user)
    cur.execute(
        "INSERT INTO grants (user_id, path, role) VALUES (%s, %s, %s)"
        " ON CONFLICT (user_id, path) DO UPDATE SET role = excluded.role, created_at = now()",
        (holder, normalize_path(path), role),
    )
    _grants_changed(cur, holder)


def revoke(cur, user: str, path: str) -> None:
    holder = user_id(cur, user)
    cur.execute("DELETE FROM grants WHERE user_id = %s AND path = %s RETURNING 1", (holder, normalize_path(path)))
    if cur.fetchone() is None:
        raise AccountError(f"{user!r} holds no role on {shown_path(normalize_path(path))!r}")
    _grants_changed(cur, holder)


def list_grants(cur, user: str | None = None) -> list[dict]:
    cur.execute(
        "SELECT u.name AS user, g.path, g.role, g.created_at FROM grants g JOIN users u ON u.id = g.user_id"
        " WHERE %(user)s::text IS NULL OR u.name = %(user)s ORDER BY u.name, g.path",
        {"user": user},
    )
    return cur.fetchall()
