"""The ``event_queue`` table: every statement on it.

The PostgreSQL bus keeps its events there; both buses keep their delayed
retries there, and dead letters come back there when replayed. A worker
leases a row (:func:`claim`) before preparing its event outside any
transaction, renews the lease while it works, and settles the row in the
transaction that applies the event; a worker that dies lets its leases run
out, and another takes the events over.
"""

from __future__ import annotations

from psycopg2.extras import Json, execute_values

from ocicat.untrusted import storable

CHANNEL = "ocicat_events"  # NOTIFY wakes idle workers when events arrive
LEASE_SECONDS = 30.0  # a claimed event is another worker's again this long after its worker stopped renewing


def enqueue(cur, events: list[tuple[str, str, object]], *, attempts: int = 0, delay: float = 0.0,
            error: str | None = None, retry: bool = False) -> int:
    """Put ``(event_id, repository, payload)`` on the queue, due in ``delay`` seconds; how many rows are new.

    An event id already queued is left as it is: a redelivered event adds
    nothing. With ``retry`` the event is coming back after a failed attempt,
    and its row takes the new due time and error, its attempts never going
    down (a Kafka message can be redelivered after its retry was queued).
    """
    rows = execute_values(
        cur,
        "INSERT INTO event_queue (event_id, repository, payload, attempts, last_error, available_at) VALUES %s "
        "ON CONFLICT (event_id) DO UPDATE SET attempts = greatest(event_queue.attempts, excluded.attempts), "
        "last_error = coalesce(excluded.last_error, event_queue.last_error), available_at = excluded.available_at "
        f"WHERE {'true' if retry else 'false'} "
        "RETURNING xmax = 0 AS inserted",
        [(event_id, repository, Json(storable(payload)), attempts, None if error is None else storable(error[:2000]),
          delay) for event_id, repository, payload in events],
        template="(%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
        fetch=True,
    )
    return sum(1 for row in rows if row["inserted"])


def notify(cur) -> None:
    """Wake idle workers once the transaction commits."""
    cur.execute(f"NOTIFY {CHANNEL}")


def claim(cur, limit: int) -> list[dict]:
    """Lease the oldest due event and up to ``limit`` - 1 more due events of its repository, oldest first: they are
    not due again for LEASE_SECONDS. [] when nothing is due."""
    # LATERAL, so that the repository's events are found by its index, and = ANY (ARRAY(...)), so that the rows are
    # updated by their ids: with a backlog of 100,000 the statement still reads a few index pages (EXPLAIN ANALYZE).
    cur.execute(
        "WITH first AS (SELECT id, repository FROM event_queue WHERE available_at <= now() ORDER BY id LIMIT 1"
        "               FOR UPDATE SKIP LOCKED),"
        "     more AS (SELECT m.id FROM first f CROSS JOIN LATERAL ("
        "               SELECT q.id FROM event_queue q"
        "                WHERE q.repository = f.repository AND q.id > f.id AND q.available_at <= now()"
        "                ORDER BY q.id LIMIT %s FOR UPDATE SKIP LOCKED) m) "
        "UPDATE event_queue SET available_at = now() + make_interval(secs => %s) "
        "WHERE id = ANY (ARRAY(SELECT id FROM first UNION ALL SELECT id FROM more)) "
        "RETURNING id, event_id, repository, payload, attempts",
        (limit - 1, LEASE_SECONDS),
    )
    return sorted(cur.fetchall(), key=lambda row: row["id"])


def renew(cur, row_ids: list[int]) -> None:
    """Extend the leases of the events a worker is still working on."""
    cur.execute("UPDATE event_queue SET available_at = now() + make_interval(secs => %s) WHERE id = ANY(%s)",
                (LEASE_SECONDS, row_ids))


def hold(cur, row_ids: list[int]) -> set[int]:
    """Lock leased rows for the transaction that settles them; those still there (not settled meanwhile by a worker
    that took them over after their lease ran out)."""
    cur.execute("SELECT id FROM event_queue WHERE id = ANY (%s) ORDER BY id FOR UPDATE", (row_ids,))
    return {row["id"] for row in cur.fetchall()}


def remove(cur, event_ids: list[str]) -> None:
    cur.execute("DELETE FROM event_queue WHERE event_id = ANY (%s)", (event_ids,))


def backlog(cur, more_than: int) -> bool:
    """Whether more than ``more_than`` events wait to be indexed (or are being indexed): reads that many rows at most."""
    cur.execute("SELECT count(*) > %s AS busy FROM (SELECT 1 FROM event_queue LIMIT %s) q", (more_than, more_than + 1))
    return cur.fetchone()["busy"]


def ready(cur) -> None:
    """Raise unless the table is there."""
    cur.execute("SELECT 1 FROM event_queue LIMIT 0")
