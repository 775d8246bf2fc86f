"""Catalog events: what changed in the catalog, recorded in the transaction that changed it (a transactional outbox).

The worker (indexer.indexing) records an event beside each change the world outside may want to hear about: a
manifest indexed for the first time (``chart.version.published`` for a chart, ``attachment.added`` for a signature,
SBOM or attestation of another manifest, ``<kind>.published`` for the rest), a tag pointed somewhere new
(``tag.moved``, with the digest it pointed at before, if any), a tag removed (``tag.deleted``), a manifest removed
(``manifest.deleted``). The row commits or rolls back with the change, so nothing is announced that did not happen
and nothing happens unannounced, also when a process is killed. A crawl that repairs the catalog (indexer.resync)
records the same events as the pushes and deletes it stands in for, marked ``crawl``.

The dispatcher (indexer.dispatch) reads undispatched rows in id order, hands them to the outputs and marks them;
rows of one repository are written under its lock, so their ids are in commit order.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg2.extras import Json

# A new manifest of a kind not named here publishes as ``<kind>.published`` (image.published, wasm.published, ...).
_KIND_TYPES = {"helm-chart": "chart.version.published"}

# NOTIFY'd with every event, delivered at commit: the dispatcher wakes at once instead of polling.
CHANNEL = "ocicat_catalog_events"


def published_type(kind: str, subject_digest: str | None) -> str:
    """The event type of a manifest indexed for the first time."""
    if subject_digest is not None:
        return "attachment.added"
    return _KIND_TYPES.get(kind, f"{kind}.published")


def record(cur, type_: str, repository: str, occurred_at: datetime, *, crawl: bool, tag: str | None = None,
           digest: str | None = None, **details) -> None:
    """One event, in the caller's transaction. ``details`` (kind, chart, previous_digest, subject_digest, tags, ...)
    go into its data beside the repository, its namespace, the tag and the digest."""
    data = {"repository": repository, "namespace": repository.rpartition("/")[0], "tag": tag, "digest": digest,
            **details, "origin": "crawl" if crawl else "registry"}
    cur.execute(
        "WITH e AS (INSERT INTO catalog_events (type, repository, tag, digest, crawl, data, occurred_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id) SELECT pg_notify(%s, '') FROM e",
        (type_, repository, tag, digest, crawl, Json(data), occurred_at, CHANNEL),
    )


_COLUMNS = "id, type, repository, tag, digest, crawl, data, occurred_at, recorded_at"


def undispatched(cur, limit: int) -> list[dict]:
    """The oldest events not yet handed to the outputs, locked until the caller's transaction ends."""
    cur.execute(f"SELECT {_COLUMNS} FROM catalog_events WHERE dispatched_at IS NULL ORDER BY id LIMIT %s"
                " FOR UPDATE SKIP LOCKED", (limit,))
    return cur.fetchall()


def mark_dispatched(cur, ids: list[int]) -> None:
    cur.execute("UPDATE catalog_events SET dispatched_at = now() WHERE id = ANY(%s)", (ids,))


def prune(cur, retention: timedelta, limit: int = 10_000) -> int:
    """Delete up to ``limit`` dispatched events recorded more than ``retention`` ago; how many were deleted."""
    cur.execute(
        "DELETE FROM catalog_events WHERE id IN (SELECT id FROM catalog_events"
        " WHERE recorded_at < now() - %s AND dispatched_at IS NOT NULL ORDER BY recorded_at LIMIT %s)",
        (retention, limit),
    )
    return cur.rowcount
