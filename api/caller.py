"""Who is calling: the caller of an API request, resolved once per request for every blueprint that serves the API.

A caller is who its ``Authorization`` header says (api.auth), or, without one, who the browser session's cookie
says (api.sign_in makes it). A browser sends credentials of these two kinds by itself, with requests another site
makes it send too: so a state-changing request made with the cookie must also carry the session's CSRF token in
``X-CSRF-Token``, which only ocicat's own pages can read (``GET /api/v1/me``), and HTTP Basic credentials (which a
browser keeps once given them for a feed or Helm's index) may only read.
"""

from __future__ import annotations

import hmac
import logging

import psycopg2
from flask import current_app, g, request

from ocicat import db

from . import auth
from .problems import problem

log = logging.getLogger(__name__)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ocicat"'}
# For clients that speak only HTTP Basic (feed readers, Helm's repository commands): the token is the password.
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="ocicat", charset="UTF-8"'}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


def host_cookie(name: str, secure: bool) -> str:
    """A cookie's name: with the __Host- prefix over HTTPS, which makes browsers refuse it unless it is Secure, for
    this host alone and for every path (no subdomain or plain-HTTP page can plant one)."""
    return f"__Host-{name}" if secure else name


def authenticate(challenge: dict = CHALLENGE):
    """Resolve the caller into ``g.principal`` (a ``before_request`` hook), and ``g.csrf_token`` for a session; a
    credential that is not valid is a 401, never anonymous."""
    services = current_app.extensions["ocicat"]
    header = request.headers.get("Authorization")
    cookie = request.cookies.get(services.session_cookie) if services.identity_provider else None
    g.csrf_token, g.read_after, g.read_on_primary = None, None, False
    if header and request.method not in SAFE_METHODS and header.split(" ", 1)[0].lower() == "basic":
        # A browser that was once given Basic credentials for ocicat (a feed, Helm's index) sends them by itself with
        # any request, a form another site posts included: like the session cookie, they may only read.
        return problem(403, "HTTP Basic credentials are for reading only: send the token as Bearer to change anything")
    if not (header or cookie):
        g.principal = services.anonymous
        return None
    try:
        _resolve(services, header, cookie)
        if g.principal.recheck_user is not None:  # a user made by sign-in, whose roles are due: ask, then read anew
            services.identity_provider.recheck(services.db, g.principal.recheck_user)
            _resolve(services, header, cookie)
    except auth.Unauthorized as exc:
        response = problem(401, str(exc), headers=challenge)
        if not header:
            response.delete_cookie(services.session_cookie, path="/", secure=services.secure_cookies, httponly=True)
        return response
    if g.csrf_token and request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), g.csrf_token.encode()):
        return problem(403, f"a request made with the session cookie must carry its CSRF token in {CSRF_HEADER} "
                            "(ocicat's pages send it)")
    return None


def _resolve(services, header: str | None, cookie: str | None) -> None:
    """The caller's principal into ``g``, with their session's CSRF token when it is a session, and, with replicas,
    where their reads may go (read-your-writes: ocicat.db.Reads)."""
    with services.db.transaction() as cur:
        if header:
            g.principal = auth.authenticate(cur, header, services.registry_tokens, services.config.default_public,
                                            services.identity_provider)
        else:
            g.principal, g.csrf_token = auth.from_session(cur, cookie, services.config.default_public,
                                                          services.identity_provider)
        if services.reads.replicated and g.principal.authenticated:
            g.read_after, g.read_on_primary = db.last_write(cur, g.principal.user,
                                                            services.config.replica_sticky_seconds)


def reading(snapshot: bool = False):
    """A transaction for the caller's catalog reads (``snapshot``: all of them from one snapshot): on a replica
    that has their last change, unless they made one a moment ago (its effects, such as a delete's event from the
    registry, may still be on their way); else on the primary."""
    principal = g.get("principal")
    return current_app.extensions["ocicat"].reads.transaction(
        (principal and principal.user) or request.remote_addr or "", g.get("read_after"),
        g.get("read_on_primary", False), snapshot)


def note_write(response):
    """After a change through the API (an ``after_request`` hook, with replicas): where the caller's reads may go
    next (ocicat.db.note_write)."""
    principal = g.get("principal")
    if request.method not in SAFE_METHODS and response.status_code < 400 and principal and principal.authenticated:
        try:
            with current_app.extensions["ocicat"].db.transaction() as cur:
                db.note_write(cur, principal.user)
        except psycopg2.Error as exc:  # the change is made: at worst the caller's next reads may lag it
            log.warning("could not note %s's change for read-your-writes: %s", principal.user, str(exc).strip())
    return response
