"""Exactly once in effect: buses deliver at least once, and each event id is applied once.

The id is recorded in the transaction that applies the event, so a
redelivery (the registry retrying an envelope, Kafka after a crash before its
offset commit) finds it and changes nothing. Ids are kept for a week; a
redelivery later than that is applied again, which the catalog's
order-independent writes make harmless.
"""

from __future__ import annotations

RETENTION = "7 days"


def first_time(cur, event_id: str) -> bool:
    """Record ``event_id``; False if it was applied before."""
    cur.execute("INSERT INTO processed_events (event_id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1", (event_id,))
    return cur.fetchone() is not None


def forget(cur, event_id: str) -> None:
    """Let ``event_id`` be applied again (a dead letter replayed)."""
    cur.execute("DELETE FROM processed_events WHERE event_id = %s", (event_id,))


def prune(cur) -> None:
    cur.execute("DELETE FROM processed_events WHERE processed_at < now() - %s::interval", (RETENTION,))
