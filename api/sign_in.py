"""Sign-in with the OpenID Connect provider, for the web UI: the browser's part of it, and sign-out.

Authlib runs the authorization code flow with PKCE (S256): it keeps the
state, nonce and code verifier in a short-lived signed cookie (Flask's
session, keyed by OCICAT_SECRET_KEY), and at the callback checks the state,
exchanges the code, and checks the ID token's signature (the provider's JWKS,
fetched again when a key it does not know appears), ``iss``, ``aud``, expiry
and nonce. What follows (userinfo, roles, the user) is ocicat.sign_in's. The
result is a server-side session (ocicat.accounts) whose id is in a Secure,
HttpOnly, SameSite=Lax cookie; api.caller reads it and asks for its CSRF token
on every state-changing request.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, g, jsonify, redirect, request, session
from joserfc.errors import JoseError

from ocicat import accounts
from ocicat.sign_in import ProviderError, SignInRefused

from . import caller
from .openapi import documented
from .schemas import SignOut

log = logging.getLogger(__name__)

bp = Blueprint("sign_in", __name__, url_prefix="/auth")
bp.before_request(lambda: caller.authenticate() if request.endpoint == "sign_in.sign_out" else None)


def init(app: Flask) -> None:
    """Register the provider with Authlib, and the cookie that carries the flow's state, when sign-in is configured."""
    config = app.extensions["ocicat"].config
    secure = app.extensions["ocicat"].secure_cookies
    app.config.update(SECRET_KEY=config.secret_key, SESSION_COOKIE_NAME=caller.host_cookie("ocicat_sign_in", secure),
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure)
    oauth = OAuth(app)
    oauth.register("provider", client_id=config.oidc.client_id, client_secret=config.oidc.client_secret,
                   server_metadata_url=f"{config.oidc.issuer}/.well-known/openid-configuration",
                   client_kwargs={"scope": config.oidc.scopes, "code_challenge_method": "S256"})
    app.register_blueprint(bp)


def _client():
    return current_app.extensions["authlib.integrations.flask_client"].provider


def _services():
    return current_app.extensions["ocicat"]


def _local(target: str | None) -> str:
    """Where to go after signing in: a path of ocicat's UI only, never another site (no open redirect)."""
    ui = "/ui/"
    if not target or not target.startswith(ui) or "\\" in target or any(c < " " for c in target):
        return ui
    return target


def _failed(reason: str):
    """Back to the sign-in page, which says why in words of its own for each ``reason`` (unverified, provider,
    account): nothing the provider or another site wrote is shown."""
    session.clear()
    return redirect(f"/ui/sign-in?{urlencode({'failed': reason})}", 303)


@bp.get("/sign-in")
def sign_in():
    """Go to the provider's sign-in page; come back to ``next`` (a path of the UI)."""
    session.clear()
    session["next"] = _local(request.args.get("next"))
    return _client().authorize_redirect(f"{_services().config.public_url}/auth/callback")


@bp.get("/callback")
def callback():
    """The provider sends the browser back here with a code: check everything, then start a session."""
    services = _services()
    client = _client()
    try:
        token = client.authorize_access_token()
        if not token.get("userinfo"):
            raise ProviderError("the provider sent no ID token")
        if token["userinfo"]["iss"].rstrip("/") != services.config.oidc.issuer:
            raise ProviderError(f"the ID token's issuer is {token['userinfo']['iss']!r}, not the configured one")
        user_id = services.identity_provider.complete(services.db, token)
        with services.db.transaction() as cur:
            cookie = accounts.create_session(cur, user_id, timedelta(hours=services.config.session_hours),
                                             token.get("id_token"))
    except (AuthlibBaseError, JoseError) as exc:  # state, code exchange; the ID token's signature, iss, aud, exp, nonce
        log.warning("sign-in refused: %s: %s", type(exc).__name__, exc)
        return _failed("unverified")
    except (ProviderError, SignInRefused, requests.RequestException) as exc:
        log.warning("sign-in failed: the provider: %s", exc)
        return _failed("provider")
    except accounts.AccountError as exc:
        log.warning("sign-in failed: %s", exc)
        return _failed("account")
    response = redirect(_local(session.pop("next", None)), 303)
    session.clear()
    response.set_cookie(services.session_cookie, cookie, max_age=services.config.session_hours * 3600, path="/",
                        secure=services.secure_cookies, httponly=True, samesite="Lax")
    return response


@bp.post("/sign-out")
@documented("End the browser session (with its CSRF token); where to go to sign out at the provider too",
            response=SignOut, errors=(401, 403))
def sign_out():
    services = _services()
    id_token = None
    if g.csrf_token:  # the caller is this cookie's session, and sent its CSRF token (api.caller): end it
        with services.db.transaction() as cur:
            id_token = accounts.end_session(cur, request.cookies[services.session_cookie])
    try:
        end = services.identity_provider.endpoint("end_session_endpoint")
    except ProviderError:  # none, or the provider cannot say: the session here is over all the same
        end = None
    logout = None
    if end and id_token:  # RP-initiated logout: the provider ends its own session, then sends the browser back
        logout = f"{end}?" + urlencode({"id_token_hint": id_token, "client_id": services.config.oidc.client_id,
                                        "post_logout_redirect_uri": f"{services.config.public_url}/ui/"})
    response = jsonify(SignOut().dump({"provider_logout": logout}))
    response.delete_cookie(services.session_cookie, path="/", secure=services.secure_cookies, httponly=True)
    return response
