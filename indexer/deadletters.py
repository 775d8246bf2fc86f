"""Operator tools for parked events: list them, and replay them once the cause is fixed."""

from __future__ import annotations

from marshmallow import ValidationError
from psycopg2.extras import Json

from ocicat.db import Database

from .bus import CHANNEL
from .events import Event, describe


def list_letters(db: Database, *, include_replayed: bool = False, limit: int = 100) -> list[dict]:
    with db.transaction() as cur:
        cur.execute(
            "SELECT id, event_id, repository, stage, attempts, reason, created_at, replayed_at, payload "
            "FROM dead_letters WHERE %s OR replayed_at IS NULL ORDER BY id LIMIT %s",
            (include_replayed, limit),
        )
        return cur.fetchall()


def replay(db: Database, ids: list[int] | None) -> tuple[list[int], dict[int, str]]:
    """Move dead letters back onto the queue (all open ones when ``ids`` is None).

    Each is validated again first: a letter parked as malformed stays parked,
    with the reason, until it is fixed or deleted. Returns (replayed ids,
    {id: reason} for those left in place).
    """
    replayed, refused = [], {}
    with db.transaction() as cur:
        if ids is None:
            cur.execute("SELECT id, payload FROM dead_letters WHERE replayed_at IS NULL ORDER BY id FOR UPDATE")
        else:
            cur.execute(
                "SELECT id, payload FROM dead_letters WHERE replayed_at IS NULL AND id = ANY(%s) ORDER BY id FOR UPDATE",
                (ids,),
            )
        for row in cur.fetchall():
            try:
                event = Event.load(row["payload"])
            except ValidationError as exc:
                refused[row["id"]] = describe(exc)
                continue
            # A replay must run even if an earlier attempt recorded the id.
            cur.execute("DELETE FROM processed_events WHERE event_id = %s", (event.id,))
            cur.execute(
                "INSERT INTO event_queue (event_id, repository, payload) VALUES (%s, %s, %s) "
                "ON CONFLICT (event_id) DO UPDATE SET attempts = 0, available_at = now()",
                (event.id, event.repository, Json(event.payload())),
            )
            cur.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = %s", (row["id"],))
            replayed.append(row["id"])
        if replayed:
            cur.execute(f"NOTIFY {CHANNEL}")
    return replayed, refused
