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
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from .oci.names import REPOSITORY_RE

ROLES = ("guest", "reporter", "developer", "maintainer", "owner")
LEVELS = {role: 10 * (i + 1) for i, role in enumerate(ROLES)}  # as role_level() in SQL (migrations/functions)
VIEW_LEVEL = LEVELS["reporter"]
DELETE_LEVEL = LEVELS["developer"]

USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
TOKEN_PREFIX = "ocicat_"
TOKEN_RE = re.compile(r"^ocicat_([1-9][0-9]{0,17})_([A-Za-z0-9_-]{43})\Z")
_NO_SECRET = hashlib.sha256(b"no such token").digest()  # compared against when the id is unknown

# The roles a user holds now, in SQL over users u (and grants g): an administrator's own, and the identity provider's
# until they lapse (users.sign_in_until, migrations/0016.sign_in.sql).
_SIGN_IN_LIVE = "coalesce(u.sign_in_until > now(), false)"
_ADMIN = f"(u.admin OR (u.sign_in_admin AND {_SIGN_IN_LIVE}))"
_HELD = f"(g.source = 'local' OR {_SIGN_IN_LIVE})"


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
        f"SELECT u.name, {_ADMIN} AS admin, u.created_at, si.issuer AS signed_in_with,"
        f" (SELECT count(*) FROM grants g WHERE g.user_id = u.id AND {_HELD}) AS grants,"
        " (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL"
        "   AND (t.expires_at IS NULL OR t.expires_at > now())) AS active_tokens"
        " FROM users u LEFT JOIN sign_ins si ON si.user_id = u.id ORDER BY u.name"
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


def revoke_token(cur, token_id: int, user: str | None = None) -> None:
    """Revoke a token (only if it is ``user``'s, when given: one user cannot learn of another's tokens)."""
    cur.execute(
        "UPDATE api_tokens t SET revoked_at = coalesce(revoked_at, now()) FROM users u"
        " WHERE t.id = %(id)s AND u.id = t.user_id AND (%(user)s::text IS NULL OR u.name = %(user)s) RETURNING 1",
        {"id": token_id, "user": user})
    if cur.fetchone() is None:
        raise AccountError(f"no token {token_id}")


@dataclass(frozen=True)
class Account:
    """A signed-in user; ``grants_version`` changes whenever their roles do (see :func:`grants`)."""

    user_id: int
    name: str
    admin: bool
    grants_version: int
    # A user made by sign-in: when the provider was last asked for their roles, and whether those still count.
    asked_at: datetime | None = None
    sign_in_live: bool = False


# What an Account is read from, for API tokens and sessions alike.
_ACCOUNT = (f"u.id AS user_id, u.name, {_ADMIN} AS admin, u.grants_version, si.asked_at, {_SIGN_IN_LIVE} AS sign_in_live"
            " FROM users u LEFT JOIN sign_ins si ON si.user_id = u.id")


def _account(row: dict) -> Account:
    return Account(user_id=row["user_id"], name=row["name"], admin=row["admin"], grants_version=row["grants_version"],
                   asked_at=row["asked_at"], sign_in_live=row["sign_in_live"])


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
        f" t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' AS stale, {_ACCOUNT}"
        " JOIN api_tokens t ON u.id = t.user_id WHERE t.id = %s",
        (token_id,),
    )
    row = cur.fetchone()
    matches = hmac.compare_digest(hashlib.sha256(secret.encode()).digest(),
                                  bytes(row["secret_sha256"]) if row else _NO_SECRET)
    if not (row and matches and row["live"]):
        return None
    if row["stale"]:  # noted at most once a minute: a read should not become a write every time
        cur.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (token_id,))
    return _account(row)


def account(cur, user_id: int) -> Account:
    cur.execute(f"SELECT {_ACCOUNT} WHERE u.id = %s", (user_id,))
    return _account(cur.fetchone())


def grants(cur, user_id: int) -> dict[str, int]:
    """A user's roles, path -> level (an administrator's grant and a sign-in's on one path: the higher). Read only
    when ``grants_version`` moved: a user with 1,000 grants would otherwise cost more per request than the query
    they ask for (bench/api.py)."""
    cur.execute("SELECT g.path, max(role_level(g.role)) AS level FROM grants g JOIN users u ON u.id = g.user_id"
                f" WHERE g.user_id = %s AND {_HELD} GROUP BY g.path", (user_id,))
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
        " ON CONFLICT (user_id, path, source) DO UPDATE SET role = excluded.role, created_at = now()",
        (holder, normalize_path(path), role),
    )
    _grants_changed(cur, holder)


def revoke(cur, user: str, path: str) -> None:
    holder = user_id(cur, user)
    cur.execute("DELETE FROM grants WHERE user_id = %s AND source = 'local' AND path = %s RETURNING 1",
                (holder, normalize_path(path)))
    if cur.fetchone() is None:
        raise AccountError(f"{user!r} holds no role on {shown_path(normalize_path(path))!r}")
    _grants_changed(cur, holder)


def viewers(cur, path: str) -> tuple[list[str], list[dict]]:
    """Who may view ``path`` (normalized) by their roles: the administrators, and per user the grant that covers
    it most closely (user, role, path)."""
    cur.execute(f"SELECT name FROM users u WHERE {_ADMIN} ORDER BY name")
    admins = [r["name"] for r in cur.fetchall()]
    cur.execute(
        "SELECT DISTINCT ON (u.name, length(g.path)) u.name AS user, g.role, g.path"
        " FROM grants g JOIN users u ON u.id = g.user_id"
        " WHERE (g.path = %(path)s OR g.path = ANY (path_ancestors(%(path)s))) AND role_level(g.role) >= %(level)s"
        f" AND {_HELD} ORDER BY u.name, length(g.path) DESC, role_level(g.role) DESC",
        {"path": path, "level": VIEW_LEVEL},
    )
    return admins, cur.fetchall()


def list_grants(cur, user: str | None = None) -> list[dict]:
    cur.execute(
        "SELECT u.name AS user, g.path, g.role, g.source, g.created_at FROM grants g JOIN users u ON u.id = g.user_id"
        f" WHERE (%(user)s::text IS NULL OR u.name = %(user)s) AND {_HELD} ORDER BY u.name, g.path, g.source",
        {"user": user},
    )
    return cur.fetchall()


# -- users made by sign-in (ocicat.sign_in) --------------------------------------


def signed_in_user(cur, issuer: str, subject: str, name_hint: str) -> int:
    """The user the provider knows as (issuer, subject), made on their first sign-in under the name they go by
    there. Users are told apart by (issuer, subject), never by name: a name taken already (a local user, or someone
    else's) gets a random suffix, which nobody can take ahead of them by choosing their own name at the provider."""
    cur.execute("SELECT user_id FROM sign_ins WHERE issuer = %s AND subject = %s", (issuer, subject))
    row = cur.fetchone()
    if row is not None:
        return row["user_id"]
    base = re.sub(r"[^A-Za-z0-9._@-]", "-", name_hint)[:48].lstrip("._@-") or "user"
    for name in (base, *(f"{base}-{secrets.token_hex(5)}" for _ in range(3))):
        cur.execute("INSERT INTO users (name) VALUES (%s) ON CONFLICT (name) DO NOTHING RETURNING id", (name,))
        row = cur.fetchone()
        if row is not None:
            cur.execute("INSERT INTO sign_ins (user_id, issuer, subject) VALUES (%s, %s, %s)",
                        (row["id"], issuer, subject))
            return row["id"]
    raise AccountError(f"cannot name the user signing in as {name_hint!r}: every name tried is taken")


def signed_in_with(cur, name: str) -> str | None:
    """The issuer of the provider a user was made by signing in with; None for a local user."""
    cur.execute("SELECT si.issuer FROM sign_ins si JOIN users u ON u.id = si.user_id WHERE u.name = %s", (name,))
    row = cur.fetchone()
    return row["issuer"] if row else None


def set_sign_in_roles(cur, user_id: int, roles: dict[str, str], admin: bool, lasting: timedelta | None) -> None:
    """Replace what the provider gives a user (path -> role, and admin) with what it gives now, to count for
    ``lasting`` from now (None: not at all). The user's cached roles are dropped only when the roles changed."""
    cur.execute("SELECT path, role FROM grants WHERE user_id = %s AND source = 'sign-in'", (user_id,))
    held = {row["path"]: row["role"] for row in cur.fetchall()}
    cur.execute("SELECT sign_in_admin FROM users WHERE id = %s", (user_id,))
    changed = held != roles or cur.fetchone()["sign_in_admin"] != admin
    if changed:
        cur.execute("DELETE FROM grants WHERE user_id = %s AND source = 'sign-in'", (user_id,))
        if roles:
            cur.execute("INSERT INTO grants (user_id, source, path, role)"
                        " SELECT %s, 'sign-in', path, role FROM unnest(%s::text[], %s::text[]) AS r (path, role)",
                        (user_id, list(roles), list(roles.values())))
    cur.execute("UPDATE users SET sign_in_admin = %s, sign_in_until = now() + %s,"
                " grants_version = grants_version + %s WHERE id = %s", (admin, lasting, int(changed), user_id))


def lock_sign_in(cur, user_id: int) -> datetime:
    """Lock the user's sign-in for writing what the provider said, so that the writers of one user's roles (sign-ins
    and checks, in any API process) take turns; when they last signed in, for a check to see whether a sign-in came
    while it asked (then the sign-in's answer is the newer one)."""
    cur.execute("SELECT signed_in_at FROM sign_ins WHERE user_id = %s FOR UPDATE", (user_id,))
    return cur.fetchone()["signed_in_at"]


def record_answer(cur, user_id: int, claims: dict, refresh_token: bytes | None, access_token: bytes | None,
                  signed_in: bool) -> None:
    """Note what the provider answered now: userinfo and its tokens (sealed). At a sign-in (``signed_in``) its tokens
    replace those held; at a check, a refresh token is replaced only when the provider sent a new one."""
    cur.execute(
        "UPDATE sign_ins SET claims = %(claims)s, answered_at = now(), asked_at = now(), checking_until = NULL,"
        " signed_in_at = CASE WHEN %(signed_in)s THEN now() ELSE signed_in_at END,"
        " refresh_token = CASE WHEN %(signed_in)s THEN %(refresh)s ELSE coalesce(%(refresh)s, refresh_token) END,"
        " access_token = %(access)s WHERE user_id = %(user_id)s",
        {"claims": json.dumps(claims), "signed_in": signed_in, "refresh": refresh_token, "access": access_token,
         "user_id": user_id})


def claim_check(cur, user_id: int, older_than: timedelta, lease: timedelta) -> dict | None:
    """The sign-in of ``user_id`` to check with the provider, marked as asked now and leased for ``lease`` to the
    caller, when it was last asked longer than ``older_than`` ago and no one holds the lease; None otherwise (the
    roles held stand). Marked whatever the answer, so that a provider that is down is asked once per interval, not
    at every request; leased, so that two processes never use one refresh token (a provider that rotates them
    would take the second use for a stolen token's)."""
    cur.execute(
        "WITH due AS (SELECT user_id FROM sign_ins WHERE user_id = %s AND asked_at < now() - %s"
        "   AND (checking_until IS NULL OR checking_until < now()) FOR UPDATE SKIP LOCKED)"
        " UPDATE sign_ins s SET asked_at = now(), checking_until = now() + %s FROM due WHERE s.user_id = due.user_id"
        " RETURNING s.refresh_token, s.access_token, s.answered_at, s.signed_in_at",
        (user_id, older_than, lease))
    return cur.fetchone()


def end_check(cur, user_id: int, refresh_token: bytes | None = None, access_token: bytes | None = None) -> None:
    """A check that got no answer is over: its lease ends, and tokens the provider did send are kept (a refresh
    token it rotated before the rest failed: the old one is spent)."""
    cur.execute("UPDATE sign_ins SET checking_until = NULL, refresh_token = coalesce(%s, refresh_token),"
                " access_token = coalesce(%s, access_token) WHERE user_id = %s", (refresh_token, access_token, user_id))


def forget_sign_in(cur, user_id: int) -> None:
    """The provider refused to vouch for the user: their roles from it go, and so do their sessions."""
    set_sign_in_roles(cur, user_id, {}, False, None)
    cur.execute("UPDATE sign_ins SET refresh_token = NULL, access_token = NULL, checking_until = NULL"
                " WHERE user_id = %s", (user_id,))
    cur.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))


# -- browser sessions ------------------------------------------------------------

SESSION_RE = re.compile(r"^([1-9][0-9]{0,17})_([A-Za-z0-9_-]{43})\Z")


def create_session(cur, user_id: int, lifetime: timedelta, id_token: str | None) -> str:
    """A new session: the cookie's value (shown once, as for a token)."""
    secret = secrets.token_urlsafe(32)
    cur.execute("DELETE FROM sessions WHERE expires_at < now()")  # the expired ones, while here
    cur.execute(
        "INSERT INTO sessions (user_id, secret_sha256, csrf_token, id_token, expires_at)"
        " VALUES (%s, %s, %s, %s, now() + %s) RETURNING id",
        (user_id, hashlib.sha256(secret.encode()).digest(), secrets.token_urlsafe(32), id_token, lifetime))
    return f"{cur.fetchone()['id']}_{secret}"


def session_account(cur, cookie: str) -> tuple[Account, str] | None:
    """The account and CSRF token of a live session; None for anything else (compared as tokens are)."""
    match = SESSION_RE.match(cookie)
    if match is None:
        return None
    cur.execute(f"SELECT s.secret_sha256, s.expires_at > now() AS live, s.csrf_token, {_ACCOUNT}"
                " JOIN sessions s ON s.user_id = u.id WHERE s.id = %s", (int(match.group(1)),))
    row = cur.fetchone()
    matches = hmac.compare_digest(hashlib.sha256(match.group(2).encode()).digest(),
                                  bytes(row["secret_sha256"]) if row else _NO_SECRET)
    if not (row and matches and row["live"]):
        return None
    return _account(row), row["csrf_token"]


def end_session(cur, cookie: str) -> str | None:
    """Delete the session of a cookie the request was authenticated with (api.caller read it already, so it is not
    looked up again; the secret must still match); the ID token it was made with (the provider's logout hint)."""
    match = SESSION_RE.match(cookie)
    if match is None:
        return None
    cur.execute("DELETE FROM sessions WHERE id = %s AND secret_sha256 = %s RETURNING id_token",
                (int(match.group(1)), hashlib.sha256(match.group(2).encode()).digest()))
    row = cur.fetchone()
    return row["id_token"] if row else None
