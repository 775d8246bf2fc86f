"""Who is calling: the caller of an API request, resolved once per request for every blueprint that serves the API."""

from __future__ import annotations

from flask import current_app, g, request

from . import auth
from .problems import problem

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ocicat"'}
# For clients that speak only HTTP Basic (feed readers, Helm's repository commands): the token is the password.
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="ocicat", charset="UTF-8"'}


def authenticate(challenge: dict = CHALLENGE):
    """Resolve the caller into ``g.principal`` (a ``before_request`` hook); a credential that is not valid is a 401,
    never anonymous."""
    services = current_app.extensions["ocicat"]
    header = request.headers.get("Authorization")
    if not header:
        g.principal = services.anonymous
        return None
    try:
        with services.db.transaction() as cur:
            g.principal = auth.authenticate(cur, header, services.registry_tokens, services.config.default_public)
    except auth.Unauthorized as exc:
        return problem(401, str(exc), headers=challenge)
    return None
