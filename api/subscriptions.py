"""Subscriptions to catalog events: thin views over ocicat.subscriptions, for signed-in users.

A user sees and changes their own subscriptions; an administrator sees and changes everyone's. Another user's
subscription is a 404, like one that does not exist. The secret is shown once, when a subscription is created or
its secret rotated. A target URL is checked against the SSRF guard (ocicat.outbound) when it is saved, and again
at every delivery.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import Schema, ValidationError

from ocicat import accounts, subscriptions
from ocicat.outbound import Refused

from . import caller
from .openapi import documented
from .pagination import decode_cursor, list_response, page
from .problems import problem
from .schemas import Delivery, ListArgs, Ping, Subscription, SubscriptionCreate, SubscriptionUpdate

bp = Blueprint("subscriptions", __name__, url_prefix="/api/v1/subscriptions")
bp.before_request(caller.authenticate)

_ID = ("int8",)  # the cursor of both lists: the last row's id


def _json(schema: type[Schema]) -> dict:
    """An OpenAPI request body of ``schema`` as JSON."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


@bp.before_request
def _signed_in():
    if not g.principal.authenticated:
        return problem(401, "sign in to manage subscriptions", headers=caller.CHALLENGE)
    try:
        with _services().db.transaction() as cur:
            g.user_id = accounts.user_id(cur, g.principal.user)
    except accounts.AccountError:  # signed in with a registry token for a user ocicat does not know
        return problem(403, "subscriptions belong to ocicat users: sign in with an ocicat API token")
    return None


def _services():
    return current_app.extensions["ocicat"]


def _owner() -> int | None:
    """Whose subscriptions the caller may see and change: their own, or everyone's (None) for an administrator."""
    return None if g.principal.admin else g.user_id


def _body(schema: Schema) -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", "body")
    return schema.load(data)


def _check_url(url: str):
    try:
        _services().config.delivery_allow.check_url(url)
    except Refused as exc:
        return problem(422, f"url: {exc}")
    return None


def _not_found(subscription_id: int):
    return problem(404, f"subscription {subscription_id} not found")


@bp.get("")
@documented("List your subscriptions (an administrator: everyone's)", args=ListArgs, response=Subscription,
            listing=True, errors=(400, 401, 403))
def list_subscriptions():
    args = ListArgs().load(request.args)
    after = decode_cursor(args["cursor"], _ID)
    with _services().db.transaction() as cur:
        rows = subscriptions.list_(cur, _owner(), after[0] if after else 0, args["limit"] + 1)
    return list_response(page(rows, args["limit"], lambda row: [row["id"]]), Subscription())


@bp.post("")
@documented("Subscribe a URL to catalog events; the answer holds the signing secret, shown this once",
            body=_json(SubscriptionCreate), response=Subscription, status=201, errors=(400, 401, 403, 409, 422))
def create_subscription():
    data = _body(SubscriptionCreate())
    refused = _check_url(data["url"])
    if refused:
        return refused
    with _services().db.transaction() as cur:
        try:
            row, secret = subscriptions.create(cur, g.user_id, data["name"], data["url"], data["format"],
                                               data["filters"], data["secret"])
        except subscriptions.SubscriptionError as exc:
            return problem(409, str(exc))
    return jsonify(Subscription().dump({**row, "secret": secret})), 201


@bp.get("/<int:subscription_id>")
@documented("One subscription: its target, filters, and whether it is paused or failing, and why",
            response=Subscription, errors=(401, 403, 404))
def get_subscription(subscription_id: int):
    with _services().db.transaction() as cur:
        row = subscriptions.get(cur, subscription_id, _owner())
    return jsonify(Subscription().dump(row)) if row else _not_found(subscription_id)


@bp.patch("/<int:subscription_id>")
@documented("Change a subscription, pause it, or resume it (which clears its failing mark)", body=_json(SubscriptionUpdate),
            response=Subscription, errors=(400, 401, 403, 404, 409, 422))
def update_subscription(subscription_id: int):
    changes = _body(SubscriptionUpdate())
    if "url" in changes:
        refused = _check_url(changes["url"])
        if refused:
            return refused
    with _services().db.transaction() as cur:
        if subscriptions.get(cur, subscription_id, _owner()) is None:
            return _not_found(subscription_id)
        try:
            row = subscriptions.update(cur, subscription_id, changes)
        except subscriptions.SubscriptionError as exc:
            return problem(409, str(exc))
    return jsonify(Subscription().dump(row))


@bp.delete("/<int:subscription_id>")
@documented("Delete a subscription and its deliveries", status=204, errors=(401, 403, 404))
def delete_subscription(subscription_id: int):
    with _services().db.transaction() as cur:
        if subscriptions.get(cur, subscription_id, _owner()) is None:
            return _not_found(subscription_id)
        subscriptions.delete(cur, subscription_id)
    return "", 204


@bp.post("/<int:subscription_id>/rotate-secret")
@documented("A new signing secret, shown this once; the previous one keeps signing beside it for a day",
            response=Subscription, errors=(401, 403, 404))
def rotate_secret(subscription_id: int):
    with _services().db.transaction() as cur:
        if subscriptions.get(cur, subscription_id, _owner()) is None:
            return _not_found(subscription_id)
        secret = subscriptions.rotate_secret(cur, subscription_id)
        row = subscriptions.get(cur, subscription_id)
    return jsonify(Subscription().dump({**row, "secret": secret}))


@bp.post("/<int:subscription_id>/ping")
@documented("Send a test event (dev.ocicat.ping) after the subscription's pending deliveries", response=Ping,
            status=202, errors=(401, 403, 404))
def ping(subscription_id: int):
    with _services().db.transaction() as cur:
        if subscriptions.get(cur, subscription_id, _owner()) is None:
            return _not_found(subscription_id)
        delivery_id = subscriptions.ping(cur, subscription_id)
    return jsonify(Ping().dump({"delivery_id": delivery_id})), 202


@bp.get("/<int:subscription_id>/deliveries")
@documented("A subscription's recent deliveries, newest first: state, attempts, status, latency, response excerpt",
            args=ListArgs, response=Delivery, listing=True, errors=(400, 401, 403, 404))
def list_deliveries(subscription_id: int):
    args = ListArgs().load(request.args)
    before = decode_cursor(args["cursor"], _ID)
    with _services().db.transaction() as cur:
        if subscriptions.get(cur, subscription_id, _owner()) is None:
            return _not_found(subscription_id)
        rows = subscriptions.deliveries(cur, subscription_id, before[0] if before else None, args["limit"] + 1)
    return list_response(page(rows, args["limit"], lambda row: [row["id"]]), Delivery())
