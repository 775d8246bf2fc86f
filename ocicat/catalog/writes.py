"""Every catalog write, in one place, as idempotent SQL.

Order independence comes from two rules:
- a tag row changes only for an event newer than the one that last set it
  (deleted tags stay as tombstones with their event time), and newer than
  the last resync that saw it (``seen_at``);
- a manifest row exists exactly while the registry was last seen to have it:
  a push only writes what was just fetched, and a delete removes the row
  unless a newer push has been applied, or a resync has seen it, since.
A resync observation is written through the same statements as an event,
dated just before the request that observed it (see indexer/resync.py).
All writes for one repository are serialized by a transaction-scoped advisory
lock, so two workers never interleave the writes of a push and a delete of the same thing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from psycopg2.extras import Json, execute_values

from .. import compare
from ..oci.classify import Classified
from .reads import CHART_BRIEF
from .visibility import wait_for_rule_changes


def lock_repository(cur, name: str) -> bool:
    """Take the repository's transaction-scoped lock; False if another transaction holds it."""
    cur.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0)) AS locked", (name,))
    return cur.fetchone()["locked"]


def ensure_repository(cur, name: str, event_at: datetime) -> int:
    """The repository's id, created on first sight (reads only, once it exists)."""
    cur.execute("SELECT id FROM repositories WHERE name = %s", (name,))
    row = cur.fetchone()
    if row is None:
        # Visibility comes from the rules covering the new path, read once no rule change is in flight.
        wait_for_rule_changes(cur)
        cur.execute(
            "INSERT INTO repositories (name, namespace, updated_at, public) VALUES (%s, %s, %s, path_public(%s)) "
            "ON CONFLICT (name) DO UPDATE SET namespace = excluded.namespace RETURNING id",
            (name, name.rpartition("/")[0], event_at, name),
        )
        row = cur.fetchone()
    return row["id"]


# After a transaction's events: each repository's figures, a new change number (migration 0014), and its search
# document from its newest manifest that is not an attachment. Weights: A names, B title and description, C keywords
# and maintainers, D annotations and namespace. (A version tag is any tag but a sha256-<hex> attachment tag on a
# manifest that is not an attachment, as the tags API lists them.)
# One statement for any number of repositories: the figures are grouped aggregates, so the planner reads a few
# repositories' rows through their indexes and a whole catalog (bench/api.py's bulk load) in one pass; the newest
# manifest and chart version are per-repository index lookups either way.
_REFRESH_REPOSITORIES = """
UPDATE repositories r SET
    updated_at = greatest(r.updated_at, changed.event_at),
    manifest_count = coalesce(figures.manifest_count, 0),
    tag_count = coalesce(tag_counts.tag_count, 0),
    kinds = coalesce(figures.kinds, '{}'),
    size_bytes = coalesce(figures.size_bytes, 0),
    last_pushed_at = figures.last_pushed_at,
    latest_chart_id = latest_chart.id,
    change_serial = nextval('repository_changes'),
    search = setweight(to_tsvector('simple', r.name || ' ' || translate(r.name, '/_.', '   ')), 'A')
          || setweight(to_tsvector('simple', coalesce(latest.title, '')), 'A')
          || setweight(to_tsvector('simple', coalesce(latest.description, '')), 'B')
          || setweight(to_tsvector('simple', coalesce(latest.keywords, '')), 'C')
          || setweight(to_tsvector('simple', coalesce(latest.annotations, '') || ' ' || translate(r.namespace, '/_.', '   ')), 'D')
FROM unnest(%(ids)s::bigint[], %(event_ats)s::timestamptz[]) AS changed(id, event_at)
LEFT JOIN (
    SELECT m.repository_id, count(*) AS manifest_count,
           array_agg(DISTINCT m.kind ORDER BY m.kind) FILTER (WHERE m.subject_digest IS NULL) AS kinds,
           sum(m.size_bytes) AS size_bytes, max(m.pushed_at) AS last_pushed_at
      FROM manifests m WHERE m.repository_id = ANY(%(ids)s::bigint[])
     GROUP BY m.repository_id
) figures ON figures.repository_id = changed.id
LEFT JOIN (
    SELECT t.repository_id, count(*) AS tag_count
      FROM tags t JOIN manifests v ON v.repository_id = t.repository_id AND v.digest = t.digest
     WHERE t.repository_id = ANY(%(ids)s::bigint[]) AND v.subject_digest IS NULL AND t.name NOT LIKE 'sha256-%%'
     GROUP BY t.repository_id
) tag_counts ON tag_counts.repository_id = changed.id
-- chart version order, as reads.list_chart_versions lists them
LEFT JOIN LATERAL (
    SELECT v.id FROM manifests v JOIN helm_charts c ON c.manifest_id = v.id
     WHERE v.repository_id = changed.id AND v.subject_digest IS NULL
     ORDER BY chart_version_rank(c.prerelease), c.version_key DESC NULLS LAST, v.id DESC
     LIMIT 1
) latest_chart ON true
LEFT JOIN LATERAL (
    SELECT coalesce(c.name, m.metadata->>'title') AS title,
           left(coalesce(c.description, m.metadata->>'description'), 10000) AS description,
           left(concat_ws(' ', (SELECT string_agg(k, ' ') FROM jsonb_array_elements_text(c.keywords) k),
                          (SELECT string_agg(x->>'name', ' ') FROM jsonb_array_elements(c.maintainers) x
                            WHERE jsonb_typeof(x) = 'object')), 10000) AS keywords,
           left((SELECT string_agg(v, ' ') FROM jsonb_each_text(m.annotations) a(k, v)), 10000) AS annotations
      FROM (SELECT * FROM manifests WHERE repository_id = changed.id AND subject_digest IS NULL
             ORDER BY pushed_at DESC, id DESC LIMIT 1) m
      LEFT JOIN helm_charts c ON c.manifest_id = m.id
) latest ON true
WHERE r.id = changed.id
"""


def refresh_repositories(cur, changed: dict[int, datetime | None]) -> None:
    """After events: each repository's last-change time (the event time given; None: unchanged), figures and
    search document, by repository id."""
    ids = sorted(changed)
    cur.execute(_REFRESH_REPOSITORIES, {"ids": ids, "event_ats": [changed[i] for i in ids]})


def mark_changed(cur, repository: str) -> None:
    """A new change number for the repository (as a refresh takes), for writes that leave the refresh for later."""
    cur.execute("UPDATE repositories SET change_serial = nextval('repository_changes') WHERE name = %s", (repository,))


def manifest_indexed(cur, repository: str, digest: str) -> bool:
    """Whether the catalog holds the manifest: asked before fetching it (content behind a digest never changes)."""
    cur.execute("SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id"
                " WHERE r.name = %s AND m.digest = %s", (repository, digest))
    return cur.fetchone() is not None


def touch_manifest(cur, repository_id: int, digest: str, pushed_at: datetime) -> bool:
    """Note another push of an already indexed manifest; False if it is not indexed."""
    cur.execute(
        "UPDATE manifests SET pushed_at = greatest(pushed_at, %s) WHERE repository_id = %s AND digest = %s RETURNING id",
        (pushed_at, repository_id, digest),
    )
    return cur.fetchone() is not None


@dataclass
class Details:
    """What the worker extracted beyond the manifest itself."""

    chart: dict | None = None  # helm_charts columns
    sources: list[dict] = field(default_factory=list)  # the chart's templates and CRDs: path, content, size, truncated
    image_config: dict | None = None  # image_configs columns
    metadata: dict = field(default_factory=dict)  # surfaced OCI annotations
    error: str | None = None  # a recorded problem with the contents (bad chart, bad config)


def save_manifest(
    cur,
    repository_id: int,
    digest: str,
    manifest_size: int,
    content: dict,
    classified: Classified,
    pushed_at: datetime,
    details: Details,
) -> tuple[int, bool]:
    """Write a fetched manifest and what hangs off it; its id, and True if it is new to the catalog (not a
    re-index)."""
    # Descriptor sizes are the pusher's claims: their sum is clamped to what bigint holds.
    size = min(manifest_size + classified.config_size + sum(l["size_bytes"] for l in classified.layers), 2**63 - 1)
    cur.execute(
        """
        INSERT INTO manifests (repository_id, digest, media_type, artifact_type, config_media_type, config_digest,
                               kind, manifest_size, size_bytes, annotations, subject_digest, content, error, pushed_at,
                               metadata)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (repository_id, digest) DO UPDATE SET
            media_type = excluded.media_type, artifact_type = excluded.artifact_type,
            config_media_type = excluded.config_media_type, config_digest = excluded.config_digest,
            kind = excluded.kind, manifest_size = excluded.manifest_size, size_bytes = excluded.size_bytes,
            annotations = excluded.annotations,
            subject_digest = coalesce(excluded.subject_digest, manifests.subject_digest),
            content = excluded.content, error = excluded.error, metadata = excluded.metadata,
            -- only a re-index (resync --reindex) meets an existing row: events touch_manifest first, under the
            -- repository lock; the push time users see stays the first one
            pushed_at = manifests.pushed_at, indexed_at = now()
        RETURNING id, xmax = 0 AS inserted
        """,
        (
            repository_id, digest, classified.media_type, classified.artifact_type, classified.config_media_type,
            classified.config_digest, classified.kind, manifest_size, size, Json(classified.annotations),
            classified.subject_digest, Json(content), details.error, pushed_at, Json(details.metadata),
        ),
    )
    row = cur.fetchone()
    manifest_id = row["id"]
    if not row["inserted"]:  # re-indexing (xmax = 0 only on a fresh insert): replace what hangs off it
        for table in ("layers", "index_children", "chart_files", "helm_charts", "image_configs"):
            cur.execute(f"DELETE FROM {table} WHERE manifest_id = %s", (manifest_id,))
    if classified.layers:
        execute_values(
            cur,
            "INSERT INTO layers (manifest_id, position, media_type, digest, size_bytes, annotations) VALUES %s",
            [
                (manifest_id, i, l["media_type"], l["digest"], l["size_bytes"], Json(l["annotations"]))
                for i, l in enumerate(classified.layers)
            ],
        )
    if classified.children:
        execute_values(
            cur,
            "INSERT INTO index_children (manifest_id, position, media_type, digest, size_bytes, platform, annotations) VALUES %s",
            [
                (manifest_id, i, c["media_type"], c["digest"], c["size_bytes"], Json(c["platform"]), Json(c["annotations"]))
                for i, c in enumerate(classified.children)
            ],
        )
    if details.chart is not None:
        _insert_row(cur, "helm_charts", manifest_id, details.chart)
        cur.execute(f"UPDATE helm_charts c SET {_INDEX_ENTRY} WHERE manifest_id = %s", (manifest_id,))
        _save_sources(cur, manifest_id, details.sources)
    if details.image_config is not None:
        _insert_row(cur, "image_configs", manifest_id, details.image_config)
    return manifest_id, row["inserted"]


# A chart version's entry in a Helm repository's index (migration 0014, functions/helm_index_entry.sql).
_INDEX_ENTRY = "index_entry = helm_index_entry(c)"


def _save_sources(cur, manifest_id: int, sources: list[dict]) -> None:
    """A chart version's templates and CRDs (migration 0015): each content stored once, under its SHA-256, a CRD
    with its document parsed (for comparing versions field by field), once.

    The contents already stored are asked for first, so that a version repeating its predecessor's templates sends
    their digests, not their text; they are locked against the clean-up (:func:`delete_unlisted_sources`) until
    this transaction lists them. New ones are inserted in digest order: two workers storing the same new contents
    then take their row locks in one order and cannot deadlock.
    """
    if not sources:
        return
    digests = {s["path"]: hashlib.sha256(s["content"].encode()).digest() for s in sources}
    cur.execute("SELECT digest FROM chart_sources WHERE digest = ANY (%s) ORDER BY digest FOR KEY SHARE",
                (list(set(digests.values())),))
    stored = {bytes(row["digest"]) for row in cur.fetchall()}
    new = {digests[s["path"]]: s for s in sources if digests[s["path"]] not in stored}
    if new:
        execute_values(cur, "INSERT INTO chart_sources (digest, content, document) VALUES %s"
                            " ON CONFLICT (digest) DO NOTHING",
                       [(digest, s["content"], Json(compare.crd_document(s["content"]))
                         if s["path"].startswith("crds/") else None) for digest, s in sorted(new.items())])
    execute_values(cur, "INSERT INTO chart_files (manifest_id, path, size, truncated, digest) VALUES %s",
                   [(manifest_id, s["path"], s["size"], s["truncated"], digests[s["path"]]) for s in sources])


def delete_unlisted_sources(cur, after: bytes, limit: int) -> tuple[bytes | None, int]:
    """Of the next ``limit`` contents after digest ``after``, those no version lists any more: deleted. The last
    digest looked at (None past the end), and how many were deleted.

    Two statements: the first locks what its snapshot finds unlisted, skipping what a worker is about to list again
    (_save_sources locks it first); the second, with a snapshot of its own, deletes those still unlisted, so a
    version a worker committed in between keeps its content (one statement would delete it and fail the foreign
    key). A content deleted before a worker asks for it is stored anew by that worker.
    """
    cur.execute(
        """
        WITH looked AS (SELECT digest FROM chart_sources WHERE digest > %s ORDER BY digest LIMIT %s)
        SELECT (SELECT digest FROM looked ORDER BY digest DESC LIMIT 1) AS last,
               ARRAY(SELECT s.digest FROM chart_sources s JOIN looked USING (digest)
                      WHERE NOT EXISTS (SELECT 1 FROM chart_files f WHERE f.digest = s.digest)
                      FOR UPDATE OF s SKIP LOCKED) AS unlisted
        """,
        (after, limit),
    )
    row = cur.fetchone()
    cur.execute("DELETE FROM chart_sources s WHERE s.digest = ANY (%s)"
                " AND NOT EXISTS (SELECT 1 FROM chart_files f WHERE f.digest = s.digest)", (row["unlisted"],))
    return (bytes(row["last"]) if row["last"] is not None else None), cur.rowcount


def write_index_entries(cur, limit: int) -> int:
    """The index entries of up to ``limit`` chart versions indexed before entries were written at ingest (others
    skip those it holds); how many."""
    cur.execute(f"UPDATE helm_charts c SET {_INDEX_ENTRY} WHERE manifest_id IN (SELECT manifest_id FROM helm_charts"
                f" WHERE index_entry IS NULL ORDER BY manifest_id LIMIT %s FOR UPDATE SKIP LOCKED)", (limit,))
    return cur.rowcount


def _insert_row(cur, table: str, manifest_id: int, values: dict) -> None:
    """One row keyed by manifest_id; the column names come from our own code, never from input."""
    columns = sorted(values)
    params = [Json(values[c]) if isinstance(values[c], (list, dict)) else values[c] for c in columns]
    cur.execute(
        f"INSERT INTO {table} (manifest_id, {', '.join(columns)}) VALUES (%s{', %s' * len(columns)})",
        [manifest_id, *params],
    )


def set_subject(cur, repository_id: int, digest: str, subject_digest: str) -> str | None:
    """Mark an indexed manifest as an attachment (a tag named it so after it was pushed); its kind if it was not one."""
    cur.execute(
        "UPDATE manifests SET subject_digest = %s WHERE repository_id = %s AND digest = %s AND subject_digest IS NULL"
        " RETURNING kind",
        (subject_digest, repository_id, digest),
    )
    row = cur.fetchone()
    return row["kind"] if row else None


@dataclass(frozen=True)
class TagChange:
    """A tag row written: where it pointed before (None: nowhere, or a tombstone) and where it points now."""

    previous: str | None
    digest: str | None

    @property
    def moved(self) -> bool:
        return self.previous != self.digest


# The tag's previous digest comes from the statement's snapshot, taken before its own write; under the repository
# lock no other transaction writes the row in between.
_TAG_CHANGE = "WITH old AS (SELECT digest FROM tags WHERE repository_id = %(id)s AND name = %(tag)s) "


def set_tag(cur, repository_id: int, tag: str, digest: str | None, event_at: datetime) -> TagChange | None:
    """Point ``tag`` at ``digest`` (None: delete it) unless a newer event already moved it; None if it did."""
    cur.execute(
        _TAG_CHANGE + """
        INSERT INTO tags (repository_id, name, digest, event_at) VALUES (%(id)s, %(tag)s, %(digest)s, %(at)s)
        ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, event_at = excluded.event_at
        WHERE greatest(tags.event_at, tags.seen_at) < excluded.event_at
        RETURNING (SELECT digest FROM old) AS previous, digest
        """,
        {"id": repository_id, "tag": tag, "digest": digest, "at": event_at},
    )
    row = cur.fetchone()
    return TagChange(row["previous"], row["digest"]) if row else None


def describe_manifest(cur, repository_id: int, digest: str) -> dict:
    """A manifest in brief, for the event announcing a tag on it: its kind and chart (each None if unknown)."""
    cur.execute(f"SELECT m.kind, {CHART_BRIEF.format(manifest_id='m.id')} AS chart FROM manifests m"
                " WHERE m.repository_id = %s AND m.digest = %s", (repository_id, digest))
    return cur.fetchone() or {"kind": None, "chart": None}


@dataclass(frozen=True)
class DeletedManifest:
    kind: str
    subject_digest: str | None
    chart: dict | None  # the chart version in brief, when it was one


def delete_manifest(cur, repository_id: int, digest: str, event_at: datetime) -> tuple[DeletedManifest | None,
                                                                                       list[str]]:
    """Remove a manifest, unless pushed again after ``event_at``, and the tags that pointed at it before then:
    what was removed (None if the manifest stays), and the tags removed (also when the manifest stays)."""
    cur.execute(
        "DELETE FROM manifests WHERE repository_id = %s AND digest = %s AND greatest(pushed_at, seen_at) < %s"
        # RETURNING reads the statement's snapshot: the chart row the cascade removes is still there
        f" RETURNING kind, subject_digest, {CHART_BRIEF.format(manifest_id='manifests.id')} AS chart",
        (repository_id, digest, event_at),
    )
    deleted = cur.fetchone()
    # The tag keeps the time of the event that set it: the registry sends its own
    # tag-delete events for the tags that pointed here, and dating this removal
    # at the delete would wrongly refuse a retag that happened before it.
    cur.execute(
        "UPDATE tags SET digest = NULL WHERE repository_id = %s AND digest = %s AND greatest(event_at, seen_at) < %s"
        " RETURNING name",
        (repository_id, digest, event_at),
    )
    tags = sorted(row["name"] for row in cur.fetchall())
    return (DeletedManifest(deleted["kind"], deleted["subject_digest"], deleted["chart"]) if deleted else None), tags


# -- resync: observations of the registry's state, and the crawl's checkpoint ----------------


def observe_manifest(cur, repository_id: int, digest: str, seen_at: datetime) -> bool:
    """A crawl saw the registry have this manifest at ``seen_at``; False if it is not indexed."""
    cur.execute(
        "UPDATE manifests SET seen_at = greatest(seen_at, %s) WHERE repository_id = %s AND digest = %s RETURNING id",
        (seen_at, repository_id, digest),
    )
    return cur.fetchone() is not None


def observe_tag(cur, repository_id: int, tag: str, digest: str, seen_at: datetime) -> TagChange | None:
    """A crawl saw ``tag`` point at ``digest`` at ``seen_at``, unless an event or crawl newer than that set it.

    A tag already there keeps its event time (the push time users see); a
    tag the crawl moved or brought back is dated at the observation.
    """
    cur.execute(
        _TAG_CHANGE + """
        INSERT INTO tags (repository_id, name, digest, event_at, seen_at) VALUES (%(id)s, %(tag)s, %(digest)s, %(at)s, %(at)s)
        ON CONFLICT (repository_id, name) DO UPDATE SET
            event_at = CASE WHEN tags.digest = excluded.digest THEN tags.event_at ELSE excluded.event_at END,
            digest = excluded.digest, seen_at = excluded.seen_at
        WHERE greatest(tags.event_at, tags.seen_at) < excluded.seen_at
        RETURNING (SELECT digest FROM old) AS previous, digest
        """,
        {"id": repository_id, "tag": tag, "digest": digest, "at": seen_at},
    )
    row = cur.fetchone()
    return TagChange(row["previous"], row["digest"]) if row else None


# -- READMEs indexed before they were rendered at ingest (migration 0010) ------------------------------


def readmes_to_render(cur, after_id: int, max_chars: int, limit: int) -> list[dict]:
    """Chart READMEs without their HTML, after ``after_id`` in id order, locked (others skip them)."""
    cur.execute(
        "SELECT manifest_id, readme FROM helm_charts WHERE manifest_id > %s AND readme_html IS NULL"
        " AND readme IS NOT NULL AND length(readme) <= %s ORDER BY manifest_id LIMIT %s FOR UPDATE SKIP LOCKED",
        (after_id, max_chars, limit),
    )
    return cur.fetchall()


def set_readme_html(cur, manifest_id: int, html: str | None) -> None:
    cur.execute("UPDATE helm_charts SET readme_html = %s WHERE manifest_id = %s", (html, manifest_id))
