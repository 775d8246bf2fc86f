"""The registry webhook: authenticate, validate, keep what matters, make it durable, answer.

Distribution retries a non-2xx answer forever and blocks its whole queue
behind it (distribution ``notifications/sinks.go``), so one bad event inside a good envelope is parked
as a dead letter and the envelope still gets a 200. Only a wrong secret (401),
an oversize body (413), a body that is not an envelope at all (400) or a bus
that could store nothing (503, so the registry retries) fail the request.

The blueprint is made for one publisher (the bus, which the command line
wires in) and one set of secrets, and knows nothing else of the app.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from ocicat import metrics
from ocicat.events import DeadLetter, Event, Publisher, describe, identity, is_relevant

from .openapi import documented
from .problems import problem

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# How far ahead of ocicat's clock a registry's may be. The catalog orders what happened by event time (and a
# resync's observations by ocicat's), so an event dated ahead would win over every later event and crawl:
# past this skew, an event is dated when ocicat received it.
MAX_CLOCK_SKEW = timedelta(minutes=1)


def authorized(header: str | None, secrets: tuple[str, ...]) -> bool:
    """Compare the bearer secret with every configured one, in constant time.

    All secrets are compared (no early exit) so timing reveals neither which
    secret matched nor how many are configured; several are accepted at once
    to allow rotation.
    """
    scheme, _, token = (header or "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(given, secret.encode())
    return matched and bool(given)


def sort_events(raw_events: list) -> tuple[list[Event], list[DeadLetter], int]:
    """Split an envelope's events into (kept, parked, ignored-count)."""
    kept, parked, ignored = [], [], 0
    received_at = datetime.now(timezone.utc)
    for raw in raw_events:
        if not is_relevant(raw):
            ignored += 1
            metrics.EVENTS_IGNORED.inc()
            continue
        try:
            event = Event.load(raw)
        except ValidationError as exc:
            event_id, repository = identity(raw)
            metrics.EVENTS_REJECTED.labels("invalid").inc()
            parked.append(
                DeadLetter(payload=raw, reason=f"invalid event: {describe(exc)}", stage="receiver",
                           event_id=event_id, repository=repository)
            )
            continue
        if event.timestamp > received_at + MAX_CLOCK_SKEW:
            log.warning("event %s is dated %s, %s ahead of ocicat's clock; dated when received instead (is the "
                        "registry's clock right?)", event.id, event.timestamp.isoformat(),
                        event.timestamp - received_at)
            metrics.EVENTS_CLOCK_AHEAD.inc()
            event = replace(event, timestamp=received_at)
        kept.append(event)
        metrics.EVENTS_RECEIVED.labels(event.action).inc()
    return kept, parked, ignored


def blueprint(publisher: Publisher, secrets: tuple[str, ...]) -> Blueprint:
    """``POST /api/v1/events``, putting what it keeps on ``publisher``, for registries that know one of ``secrets``."""
    bp = Blueprint("receiver", __name__)

    @bp.post("/api/v1/events")
    @documented(
        "The registry's notification webhook (CNCF Distribution envelopes)",
        body={"required": True, "content": {t: {"schema": {"type": "object", "required": ["events"],
                                                             "properties": {"events": {"type": "array", "items": {}}}}}
                                            for t in ("application/vnd.docker.distribution.events.v1+json",
                                                      "application/vnd.docker.distribution.events.v2+json",
                                                      "application/json")}},
        errors=(400, 401, 413, 503),
    )
    def receive_events():
        return _receive(publisher, secrets)

    return bp


def _receive(publisher: Publisher, secrets: tuple[str, ...]):
    if not authorized(request.headers.get("Authorization"), secrets):
        metrics.EVENTS_REJECTED.labels("unauthorized").inc()
        return problem(401, "missing or wrong webhook secret", headers={"WWW-Authenticate": 'Bearer realm="ocicat"'})
    # The app's MAX_CONTENT_LENGTH is one byte over the limit: werkzeug refuses
    # a longer Content-Length itself, but silently truncates a chunked body at
    # that size, so the length check here is what catches those.
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY_BYTES:
        metrics.EVENTS_REJECTED.labels("too_large").inc()
        return problem(413, f"body is over {MAX_BODY_BYTES} bytes")
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        metrics.EVENTS_REJECTED.labels("not_json").inc()
        return problem(400, f"body is not JSON: {exc}")
    except RecursionError:
        metrics.EVENTS_REJECTED.labels("not_json").inc()
        return problem(400, "body is nested too deeply")
    if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
        metrics.EVENTS_REJECTED.labels("not_envelope").inc()
        return problem(400, 'body must be an envelope: {"events": [...]}')

    kept, parked, ignored = sort_events(envelope["events"])
    try:
        new = publisher.publish(kept, parked)
    except Exception:  # noqa: BLE001 - whatever broke, the registry must retry
        log.exception("could not store %d events; asking the registry to retry", len(kept) + len(parked))
        metrics.EVENTS_REJECTED.labels("unavailable").inc(len(kept) + len(parked))
        return problem(503, "events could not be stored; retry later", headers={"Retry-After": "1"})
    for letter in parked:
        log.warning("parked event %r from %s: %r", letter.event_id, request.remote_addr, letter.reason)
    return jsonify(accepted=len(kept), new=new, parked=len(parked), ignored=ignored)
