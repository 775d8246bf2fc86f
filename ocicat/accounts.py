"""Users, API tokens, roles on path prefixes, and visibility per path prefix: every read and write of them.

The model follows the registry's: a role granted on a path covers that path
and everything below it (guest < reporter < developer < maintainer < owner);
reporter and above may view and download, developer and above may also
publish and delete; administrators may do everything. A path is public or
private by the longest visibility rule that covers it, or by
``OCICAT_DEFAULT_VISIBILITY`` when none does. The CLI writes all of this and
the API reads it (api.auth), both through this module.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from indexer.events import REPOSITORY_RE

ROLES = ("guest", "reporter", "developer", "maintainer", "owner")
LEVELS = {role: 10 * (i + 1) for i, role in enumerate(ROLES)}  # the role_level() SQL function, migration 0005
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


def _user_id(cur, name: str) -> int:
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
    cur.execute("DELETE FROM users WHERE id = %s", (_user_id(cur, name),))


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
        (_user_id(cur, user), description, hashlib.sha256(secret.encode()).digest(), expires_in),
    )
    token_id = cur.fetchone()["id"]
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"


def list_tokens(cur, user: str | None = None) -> list[dict]:
    cur.execute(
        "SELECT t.id, u.name AS user, t.description, t.created_at, t.expires_at, t.revoked_at, t.last_used_at"
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
    """A signed-in user: who, and the roles they hold (path -> level)."""

    name: str
    admin: bool
    grants: dict[str, int]


def authenticate(cur, token: str) -> Account | None:
    """The account behind a live token; None for anything else (unknown, forged, revoked, expired).

    The secret is compared in constant time, also when the id is unknown, so
    timing tells an attacker nothing about which ids or secrets exist.
    """
    match = TOKEN_RE.match(token)
    if match is None:
        return None
    token_id, secret = int(match.group(1)), match.group(2)
    # One statement per request: the token, its user, and the user's roles.
    cur.execute(
        "SELECT t.secret_sha256, t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AS live,"
        " t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' AS stale, u.name, u.admin,"
        " (SELECT coalesce(jsonb_object_agg(g.path, role_level(g.role)), '{}') FROM grants g WHERE g.user_id = u.id)"
        " AS grants"
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
    return Account(name=row["name"], admin=row["admin"], grants=row["grants"])


# -- roles -----------------------------------------------------------------------


def grant(cur, user: str, path: str, role: str) -> None:
    """Give ``user`` ``role`` on ``path`` and everything below it (replacing a role held there)."""
    if role not in LEVELS:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    cur.execute(
        "INSERT INTO grants (user_id, path, role) VALUES (%s, %s, %s)"
        " ON CONFLICT (user_id, path) DO UPDATE SET role = excluded.role, created_at = now()",
        (_user_id(cur, user), normalize_path(path), role),
    )


def revoke(cur, user: str, path: str) -> None:
    cur.execute("DELETE FROM grants WHERE user_id = %s AND path = %s RETURNING 1", (_user_id(cur, user), normalize_path(path)))
    if cur.fetchone() is None:
        raise AccountError(f"{user!r} holds no role on {shown_path(normalize_path(path))!r}")


def list_grants(cur, user: str | None = None) -> list[dict]:
    cur.execute(
        "SELECT u.name AS user, g.path, g.role, g.created_at FROM grants g JOIN users u ON u.id = g.user_id"
        " WHERE %(user)s::text IS NULL OR u.name = %(user)s ORDER BY u.name, g.path",
        {"user": user},
    )
    return cur.fetchall()


# -- visibility ------------------------------------------------------------------

# Repositories under a path: the path itself and those that have it as an ancestor (GIN index).
_UNDER = "(r.name = %(path)s OR r.ancestors @> ARRAY[%(path)s]::text[])"


def set_visibility(cur, path: str, public: bool | None) -> int:
    """Make ``path`` and everything below it public or private (None: drop the rule); returns repositories affected.

    Each repository keeps the visibility its rules give it (migration 0005), so
    the rule and the repositories under it change in one transaction; the
    lock keeps a repository created meanwhile (store.ensure_repository) from
    reading the rules before this commits.
    """
    path = normalize_path(path)
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('ocicat visibility', 0))")
    if public is None:
        cur.execute("DELETE FROM visibility_rules WHERE path = %s RETURNING 1", (path,))
        if cur.fetchone() is None:
            raise AccountError(f"no visibility rule on {shown_path(path)!r}")
    else:
        cur.execute(
            "INSERT INTO visibility_rules (path, public) VALUES (%s, %s)"
            " ON CONFLICT (path) DO UPDATE SET public = excluded.public, created_at = now()",
            (path, public),
        )
    cur.execute(f"UPDATE repositories r SET public = path_public(r.name) WHERE {_UNDER}", {"path": path})
    return cur.rowcount


def list_visibility(cur) -> list[dict]:
    cur.execute("SELECT path, public, created_at FROM visibility_rules ORDER BY path")
    return cur.fetchall()


def who_can_see(cur, path: str, default_public: bool) -> dict:
    """Who may view ``path``: whether it is public (and by which rule), admins, and roles that cover it."""
    path = normalize_path(path)
    cur.execute(
        "SELECT v.path, v.public FROM visibility_rules v WHERE v.path = %(path)s OR v.path = ANY (path_ancestors(%(path)s))"
        " ORDER BY length(v.path) DESC LIMIT 1",
        {"path": path},
    )
    rule = cur.fetchone()
    cur.execute("SELECT name FROM users WHERE admin ORDER BY name")
    admins = [r["name"] for r in cur.fetchall()]
    cur.execute(
        "SELECT u.name AS user, g.role, g.path FROM grants g JOIN users u ON u.id = g.user_id"
        " WHERE (g.path = %(path)s OR g.path = ANY (path_ancestors(%(path)s))) AND role_level(g.role) >= %(level)s"
        " ORDER BY u.name, length(g.path) DESC",
        {"path": path, "level": VIEW_LEVEL},
    )
    return {
        "path": path,
        "public": rule["public"] if rule else default_public,
        "rule": rule["path"] if rule else None,
        "admins": admins,
        "grants": cur.fetchall(),
    }

