"""What a resync crawl needs of the database: the catalog's state per repository, the crawl's lock and checkpoint.

The crawl itself is indexer.resync; what it observes is written through
ocicat.catalog.writes like any event.
"""

from __future__ import annotations


def catalog_state(cur, repository: str) -> tuple[dict[str, str], set[str]]:
    """What the catalog holds for a repository: its live tags (name -> digest) and its manifest digests."""
    cur.execute(
        "SELECT t.name, t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id "
        "WHERE r.name = %s AND t.digest IS NOT NULL", (repository,))
    tags = {row["name"]: row["digest"] for row in cur.fetchall()}
    cur.execute("SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = %s",
                (repository,))
    return tags, {row["digest"] for row in cur.fetchall()}


def catalog_repositories(cur, prefix: str) -> list[str]:
    """Names of the repositories the catalog holds anything for, below ``prefix`` ('' for all)."""
    cur.execute("SELECT name FROM repositories WHERE %s = '' OR name = %s OR starts_with(name, %s || '/') ORDER BY name",
                (prefix, prefix, prefix))
    return [row["name"] for row in cur.fetchall()]


def resync_lock(cur, scope: str) -> bool:
    """The crawl's session lock on its scope (one crawl of a scope at a time, across processes)."""
    cur.execute("SELECT pg_try_advisory_lock(hashtextextended('ocicat resync ' || %s, 0)) AS locked", (scope,))
    return cur.fetchone()["locked"]


def resync_checkpoint(cur, scope: str) -> str | None:
    """The last repository an unfinished crawl of ``scope`` did; None to start from the beginning."""
    cur.execute("SELECT last_repository FROM resync_checkpoints WHERE scope = %s AND finished_at IS NULL", (scope,))
    row = cur.fetchone()
    return row and row["last_repository"]


def save_resync_checkpoint(cur, scope: str, last_repository: str | None, finished: bool = False) -> None:
    """Record how far a crawl got (``last_repository`` None: it starts over); ``finished`` closes it."""
    cur.execute(
        """
        INSERT INTO resync_checkpoints (scope, last_repository, finished_at) VALUES (%s, %s, CASE WHEN %s THEN now() END)
        ON CONFLICT (scope) DO UPDATE SET last_repository = excluded.last_repository, updated_at = now(),
            finished_at = excluded.finished_at,
            started_at = CASE WHEN excluded.last_repository IS NULL THEN now() ELSE resync_checkpoints.started_at END
        """,
        (scope, last_repository, finished),
    )
