"""Subscriptions to catalog events and their deliveries: every read and write of them.

A subscription belongs to a user and receives the catalog events (ocicat.catalog.outbox) its filters match, as
long as its owner may see the event's repository when the delivery is sent (``user_may_view``,
migrations/functions): a revoked grant stops deliveries at once, an administrator's subscription sees everything.
The dispatcher fans each event out into one delivery per matching subscription (:func:`fan_out`); deliverers
(indexer.delivery.send) claim the oldest pending delivery of each subscription (:func:`claim`), so one
subscription's events arrive in order and a slow or dead target holds up only its own.
"""

from __future__ import annotations

import base64
import re
import secrets as random_secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg2 import errors
from psycopg2.extras import Json, execute_values

FORMATS = ("cloudevents", "cloudevents-binary", "slack")
# A Standard Webhooks secret: whsec_ and the base64 of 24 to 64 random bytes.
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}\Z")
FILTERS = ("namespace", "repository", "kinds", "event_types", "chart")
# The secret before a rotation keeps signing this long, so receivers can switch without missing a delivery.
ROTATION_OVERLAP = timedelta(hours=24)
LEASE_SECONDS = 60  # a deliverer that dies mid-run leaves the subscription to another after this
# NOTIFY'd when deliveries are created or scheduled: deliverers wake at once instead of polling.
CHANNEL = "ocicat_deliveries"

_COLUMNS = ("s.id, s.name, s.url, s.format, s.filters, s.paused, s.failing_since, s.failure_reason, s.created_at,"
            " s.rotated_at, u.name AS owner")


class SubscriptionError(ValueError):
    """A subscription that cannot be saved, and why."""


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(24)).decode()


def create(cur, owner_id: int, name: str, url: str, format_: str, filters: dict,
           secret: str | None = None) -> tuple[dict, str]:
    """A new subscription and its secret (``secret``, or a new one; shown once)."""
    secret = secret or new_secret()
    cur.execute(
        "INSERT INTO subscriptions (owner_id, name, url, format, secrets, filters) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (owner_id, name) DO NOTHING RETURNING id",
        (owner_id, name, url, format_, [secret], Json(filters)),
    )
    row = cur.fetchone()
    if row is None:
        raise SubscriptionError(f"you already have a subscription named {name!r}")
    return get(cur, row["id"]), secret


def get(cur, subscription_id: int, owner_id: int | None = None) -> dict | None:
    """One subscription (of ``owner_id`` only, unless None: an administrator's view)."""
    cur.execute(f"SELECT {_COLUMNS} FROM subscriptions s JOIN users u ON u.id = s.owner_id"
                " WHERE s.id = %s AND (%s::bigint IS NULL OR s.owner_id = %s)", (subscription_id, owner_id, owner_id))
    return cur.fetchone()


def list_(cur, owner_id: int | None, after_id: int, limit: int) -> list[dict]:
    """Subscriptions in id order after ``after_id`` (of ``owner_id`` only, unless None: all of them)."""
    cur.execute(f"SELECT {_COLUMNS} FROM subscriptions s JOIN users u ON u.id = s.owner_id"
                " WHERE (%s::bigint IS NULL OR s.owner_id = %s) AND s.id > %s ORDER BY s.id LIMIT %s",
                (owner_id, owner_id, after_id, limit))
    return cur.fetchall()


def update(cur, subscription_id: int, changes: dict) -> dict:
    """Change name, url, format, filters or paused; resuming clears the failure mark."""
    columns = [c for c in ("name", "url", "format", "filters", "paused") if c in changes]
    if columns:
        values = [Json(changes[c]) if c == "filters" else changes[c] for c in columns]
        resume = ", failing_since = NULL, failure_reason = NULL" if changes.get("paused") is False else ""
        try:
            cur.execute(f"UPDATE subscriptions SET {', '.join(f'{c} = %s' for c in columns)}{resume} WHERE id = %s",
                        (*values, subscription_id))
        except errors.UniqueViolation:  # (owner, name)
            raise SubscriptionError(f"you already have a subscription named {changes['name']!r}") from None
        if resume:
            cur.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return get(cur, subscription_id)


def delete(cur, subscription_id: int) -> None:
    cur.execute("DELETE FROM subscriptions WHERE id = %s", (subscription_id,))


def rotate_secret(cur, subscription_id: int) -> str:
    """A new secret, signing from now on; the previous one signs beside it for ROTATION_OVERLAP."""
    secret = new_secret()
    cur.execute("UPDATE subscriptions SET secrets = ARRAY[%s, secrets[1]], rotated_at = now() WHERE id = %s",
                (secret, subscription_id))
    return secret


def signing_secrets(secrets: list[str], rotated_at: datetime | None, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one within the overlap."""
    if rotated_at is not None and now - rotated_at < ROTATION_OVERLAP:
        return secrets[:2]
    return secrets[:1]


# -- deliveries ----------------------------------------------------------------------------------------------------

# The subscriptions an event matches: each filter given must hold (namespace: the path or below; kinds, event_types:
# one of; chart: the chart's name).
_MATCHES = """
NOT s.paused
AND (s.filters->>'namespace' IS NULL OR e.repository = s.filters->>'namespace'
     OR starts_with(e.repository, (s.filters->>'namespace') || '/'))
AND (s.filters->>'repository' IS NULL OR e.repository = s.filters->>'repository')
AND (s.filters->'kinds' IS NULL OR s.filters->'kinds' ? (e.data->>'kind'))
AND (s.filters->'event_types' IS NULL OR s.filters->'event_types' ? e.type)
AND (s.filters->>'chart' IS NULL OR e.data->'chart'->>'name' = s.filters->>'chart')
"""


def fan_out(cur, event_ids: list[int]) -> int:
    """One pending delivery per event per subscription it matches, in event order; how many were created."""
    cur.execute(
        f"INSERT INTO deliveries (subscription_id, event_id)"
        f" SELECT s.id, e.id FROM catalog_events e JOIN subscriptions s ON {_MATCHES}"
        f" WHERE e.id = ANY(%s) ORDER BY e.id, s.id",
        (event_ids,),
    )
    created = cur.rowcount
    if created:
        cur.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return created


def ping(cur, subscription_id: int) -> int:
    """A test delivery (no event), behind the subscription's pending ones; its id."""
    cur.execute("WITH d AS (INSERT INTO deliveries (subscription_id) VALUES (%s) RETURNING id)"
                " SELECT d.id, pg_notify(%s, '') FROM d", (subscription_id, CHANNEL))
    return cur.fetchone()["id"]


# Subscriptions not paused whose oldest pending delivery is due, and that no other deliverer is sending, leased to
# the caller; for each, a run of its oldest pending deliveries with what sending them needs, and whether the owner
# may see the event's repository now. One lease a run, not one a delivery: a delivery costs its insert and the
# write of its outcome, nothing more (bench/events.py).
_CLAIM = """
WITH due AS (
    SELECT s.id FROM subscriptions s
     WHERE NOT s.paused AND (s.leased_until IS NULL OR s.leased_until < now())
       AND (SELECT d.next_attempt_at FROM deliveries d WHERE d.subscription_id = s.id AND d.state = 'pending'
             ORDER BY d.id LIMIT 1) <= now()
     LIMIT %(subscriptions)s
       FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE subscriptions s SET leased_until = now() + make_interval(secs => %(lease)s)
      FROM due WHERE s.id = due.id
    RETURNING s.id, s.owner_id, s.name, s.url, s.format, s.secrets, s.rotated_at
)
SELECT d.id, l.id AS subscription_id, d.attempts + 1 AS attempt, l.url, l.format, l.secrets, l.rotated_at,
       l.name AS subscription, e.id AS event_id, e.type, e.repository, e.tag, e.digest, e.data, e.occurred_at,
       e.id IS NULL OR user_may_view(l.owner_id, e.repository, %(default_public)s) AS visible
  FROM leased l
 CROSS JOIN LATERAL (SELECT * FROM deliveries d WHERE d.subscription_id = l.id AND d.state = 'pending'
                      ORDER BY d.id LIMIT %(run)s) d
  LEFT JOIN catalog_events e ON e.id = d.event_id
 ORDER BY l.id, d.id
"""


def claim(cur, subscriptions: int, run: int, default_public: bool) -> list[list[dict]]:
    """Runs of deliveries to send now, in order: one run (of up to ``run``) for each of up to ``subscriptions``
    subscriptions, leased to the caller until :func:`release` (or LEASE_SECONDS, if the caller dies)."""
    cur.execute(_CLAIM, {"subscriptions": subscriptions, "run": run, "lease": LEASE_SECONDS,
                         "default_public": default_public})
    runs: dict[int, list[dict]] = {}
    for row in cur.fetchall():
        runs.setdefault(row["subscription_id"], []).append(row)
    return list(runs.values())


def release(cur, subscription_ids: list[int]) -> None:
    """End the leases of subscriptions whose runs are over (their outcomes recorded in the same transaction)."""
    cur.execute("UPDATE subscriptions SET leased_until = NULL WHERE id = ANY(%s)", (subscription_ids,))


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: ``state`` delivered, skipped, failed, or pending again at ``retry_at``."""

    delivery_id: int
    subscription_id: int
    state: str
    status: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    excerpt: str | None = None
    retry_at: datetime | None = None
    gone: bool = False  # the target answered 410 Gone: the subscription is paused


def finish(cur, outcomes: list[Outcome]) -> None:
    """Record attempts, in one statement; a delivery out of retries, or a 410, marks its subscription failing (its
    owner sees why), a success clears the mark."""
    execute_values(
        cur,
        "UPDATE deliveries d SET state = v.state, attempts = d.attempts + 1, last_status = v.status,"
        " last_error = v.error, latency_ms = v.latency_ms, response_excerpt = v.excerpt,"
        " next_attempt_at = coalesce(v.retry_at, d.next_attempt_at),"
        " finished_at = CASE WHEN v.state = 'pending' THEN NULL ELSE now() END"
        " FROM (VALUES %s) v(id, state, status, error, latency_ms, excerpt, retry_at) WHERE d.id = v.id",
        [(o.delivery_id, o.state, o.status, o.error, o.latency_ms, o.excerpt, o.retry_at) for o in outcomes],
        template="(%s::bigint, %s, %s::int, %s, %s::real, %s, %s::timestamptz)",
    )
    for outcome in outcomes:
        if outcome.gone:
            cur.execute("UPDATE subscriptions SET paused = true, failing_since = now(), failure_reason = %s"
                        " WHERE id = %s", (f"paused: the target answered 410 Gone ({outcome.error})",
                                           outcome.subscription_id))
        elif outcome.state == "failed":
            cur.execute("UPDATE subscriptions SET failing_since = coalesce(failing_since, now()), failure_reason = %s"
                        " WHERE id = %s", (f"a delivery ran out of retries: {outcome.error}", outcome.subscription_id))
    delivered = sorted({o.subscription_id for o in outcomes if o.state == "delivered"})
    if delivered:
        cur.execute("UPDATE subscriptions SET failing_since = NULL, failure_reason = NULL"
                    " WHERE id = ANY(%s) AND failing_since IS NOT NULL", (delivered,))


def deliveries(cur, subscription_id: int, before_id: int | None, limit: int) -> list[dict]:
    """A subscription's deliveries, newest first, before ``before_id``."""
    cur.execute(
        "SELECT d.id, d.event_id, e.type AS event_type, e.repository, e.tag, d.state, d.attempts, d.next_attempt_at,"
        " d.last_status, d.last_error, d.latency_ms, d.response_excerpt, d.created_at, d.finished_at"
        " FROM deliveries d LEFT JOIN catalog_events e ON e.id = d.event_id"
        " WHERE d.subscription_id = %s AND (%s::bigint IS NULL OR d.id < %s) ORDER BY d.id DESC LIMIT %s",
        (subscription_id, before_id, before_id, limit),
    )
    return cur.fetchall()


def prune(cur, retention: timedelta, limit: int = 10_000) -> int:
    """Delete up to ``limit`` finished deliveries made more than ``retention`` ago (the oldest, in id order: no
    index to maintain for it); how many were deleted."""
    cur.execute("DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE created_at < now() - %s"
                " AND state <> 'pending' ORDER BY id LIMIT %s)", (retention, limit))
    return cur.rowcount
