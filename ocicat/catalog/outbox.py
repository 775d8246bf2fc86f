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
from urllib.parse import quote

from psycopg2.extras import Json

from ..oci.classify import ALL_KINDS
from .visibility import VISIBLE, Visibility

# A new manifest of a kind not named here publishes as ``<kind>.published`` (image.published, wasm.published, ...).
_KIND_TYPES = {"helm-chart": "chart.version.published"}
# Every event type, for subscription filters.
EVENT_TYPES = tuple(sorted({"attachment.added", "tag.moved", "tag.deleted", "manifest.deleted"}
                           | {_KIND_TYPES.get(kind, f"{kind}.published") for kind in ALL_KINDS}))

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


_COLUMNS = "e.id, e.type, e.repository, e.tag, e.digest, e.crawl, e.data, e.occurred_at, e.recorded_at"


def links(public_url: str, event_type: str, data: dict) -> dict:
    """Where a receiver reads more: the chart version, else the manifest (an attachment's subject), else, for what
    was deleted, the repository."""
    repository = quote(data["repository"])
    ui, api = f"{public_url}/ui/repositories/{repository}", f"{public_url}/api/v1/repositories/{repository}"
    if event_type in ("tag.deleted", "manifest.deleted"):
        return {"ui": ui, "api": api}
    if data.get("chart"):
        version = quote(data["chart"]["version"], safe="")
        return {"ui": f"{public_url}/ui/charts/{repository}/{version}",
                "api": f"{public_url}/api/v1/charts/{repository}/-/versions/{version}"}
    digest = data.get("subject_digest") or data["digest"]
    return {"ui": f"{ui}/-/manifests/{digest}", "api": f"{api}/-/manifests/{digest}"}


def undispatched(cur, limit: int) -> list[dict]:
    """The oldest events not yet handed to the outputs, locked until the caller's transaction ends."""
    cur.execute(f"SELECT {_COLUMNS} FROM catalog_events e WHERE dispatched_at IS NULL ORDER BY id LIMIT %s"
                " FOR UPDATE SKIP LOCKED", (limit,))
    return cur.fetchall()


def mark_dispatched(cur, ids: list[int]) -> None:
    cur.execute("UPDATE catalog_events SET dispatched_at = now() WHERE id = ANY(%s)", (ids,))


def prune(cur, retention: timedelta, limit: int = 10_000) -> int:
    """Delete up to ``limit`` dispatched events recorded more than ``retention`` ago, unless a delivery of one is still
    pending; how many were deleted."""
    cur.execute(
        "DELETE FROM catalog_events WHERE id IN (SELECT id FROM catalog_events"
        " WHERE recorded_at < now() - %s AND dispatched_at IS NOT NULL ORDER BY recorded_at LIMIT %s)"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = catalog_events.id AND d.state = 'pending')",
        (retention, limit),
    )
    return cur.rowcount


def latest(cur, seen: Visibility, *, namespace: str | None = None, repository: str | None = None,
           types: tuple[str, ...] | None = None, limit: int = 50) -> list[dict]:
    """The newest events (kept for OCICAT_EVENTS_RETENTION_DAYS) of repositories the caller may see: at or below
    ``namespace``, or of ``repository``, of ``types`` if given; for feeds."""
    cur.execute(
        f"SELECT {_COLUMNS} FROM catalog_events e JOIN repositories r ON r.name = e.repository"
        " WHERE (%(namespace)s::text IS NULL OR e.repository = %(namespace)s"
        "        OR starts_with(e.repository, %(namespace)s || '/'))"
        "   AND (%(repository)s::text IS NULL OR e.repository = %(repository)s)"
        "   AND (%(types)s::text[] IS NULL OR e.type = ANY(%(types)s))"
        f"  AND {VISIBLE} ORDER BY e.id DESC LIMIT %(limit)s",
        {"namespace": namespace, "repository": repository, "types": list(types) if types else None, "limit": limit,
         **seen.params},
    )
    return cur.fetchall()
