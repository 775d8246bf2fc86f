"""Personal API tokens: a signed-in user makes, lists and revokes their own (ocicat.accounts).

Tokens are made only from a browser session (signed in with the identity provider, CSRF-checked), not with another
token: a token that leaked must not be able to mint its successors and outlive its own expiry. Every token expires
(at most a year). A token acts with its user's roles as they are at each request, so a user who loses a group at
the provider loses it through their tokens too (api.auth, ocicat.sign_in).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError

from ocicat import accounts

from . import caller
from .openapi import documented
from .problems import problem
from .schemas import Token, TokenCreate

bp = Blueprint("tokens", __name__, url_prefix="/api/v1/me/tokens")
bp.before_request(caller.authenticate)


@bp.before_request
def _an_account():
    if not g.principal.authenticated:
        return problem(401, "sign in to manage your tokens", headers=caller.CHALLENGE)
    if g.principal.registry_token is not None:
        return problem(403, "tokens belong to ocicat users: sign in with the identity provider")
    return None


def _db():
    return current_app.extensions["ocicat"].db


@bp.get("")
@documented("Your API tokens, newest first (the tokens themselves are never shown again)", response=Token,
            errors=(401, 403))
def list_tokens():
    with _db().transaction() as cur:
        rows = accounts.list_tokens(cur, g.principal.user)
    return jsonify(items=Token(many=True).dump(sorted(rows, key=lambda r: r["id"], reverse=True)))


@bp.post("")
@documented("Make an API token for yourself (from a browser session); it is shown in this answer only",
            response=Token, status=201, errors=(400, 401, 403),
            body={"required": True, "content": {"application/json": {"schema": TokenCreate}}})
def create_token():
    if g.csrf_token is None:
        return problem(403, "tokens are made from a browser session signed in with the identity provider, not with "
                            "another token; an administrator can make one with `ocicat token create`")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", "body")
    wanted = TokenCreate().load(data)
    with _db().transaction() as cur:
        token_id, token = accounts.create_token(cur, g.principal.user, wanted["name"],
                                                timedelta(days=wanted["expires_in_days"]))
        row = next(r for r in accounts.list_tokens(cur, g.principal.user) if r["id"] == token_id)
    return jsonify(Token().dump({**row, "token": token})), 201


@bp.delete("/<int:token_id>")
@documented("Revoke one of your API tokens", errors=(401, 403, 404), status=204)
def revoke_token(token_id: int):
    try:
        with _db().transaction() as cur:
            accounts.revoke_token(cur, token_id, g.principal.user)
    except accounts.AccountError:
        return problem(404, f"you hold no token {token_id}")
    return "", 204
