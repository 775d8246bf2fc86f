"""Dead letters: events parked for an operator, with the reason; listed and replayed once the cause is fixed."""

from __future__ import annotations

from marshmallow import ValidationError
from psycopg2.extras import Json, execute_values

from ocicat import metrics
from ocicat.db import Database
from ocicat.events import DeadLetter, Event, describe
from ocicat.untrusted import storable

from . import dedupe, queue_table


def park(cur, letters: list[DeadLetter]) -> None:
    """Record dead letters in the caller's transaction (hostile text made storable); a letter parked already
    (the registry redelivering an envelope) is not parked twice."""
    for letter in letters:
        metrics.DEAD_LETTERS.labels(letter.stage).inc()
    if letters:
        execute_values(
            cur,
            "INSERT INTO dead_letters (event_id, repository, payload, reason, stage, attempts) VALUES %s "
            "ON CONFLICT DO NOTHING",
            [
                (storable(d.event_id), storable(d.repository), Json(storable(d.payload)),
                 storable(d.reason[:2000]), d.stage, d.attempts)
                for d in letters
            ],
        )


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
        cur.execute(
            "SELECT id, payload FROM dead_letters WHERE replayed_at IS NULL AND (%(all)s OR id = ANY(%(ids)s))"
            " ORDER BY id FOR UPDATE",
            {"all": ids is None, "ids": ids or []},
        )
        for row in cur.fetchall():
            try:
                event = Event.load(row["payload"])
            except ValidationError as exc:
                refused[row["id"]] = describe(exc)
                continue
            dedupe.forget(cur, event.id)  # a replay must run even if an earlier attempt recorded the id
            # Queued already only if the registry sent the event again after it was parked: that row runs anyway.
            queue_table.enqueue(cur, [(event.id, event.repository, event.payload())])
            cur.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = %s", (row["id"],))
            replayed.append(row["id"])
        if replayed:
            queue_table.notify(cur)
    return replayed, refused
