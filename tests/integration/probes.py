"""What the tests look at: rows the buses left in the database, and the catalog against the registry's own state."""

from __future__ import annotations

from indexer.registry import RegistryClient
from ocicat.errors import NotFound


def queue_rows(db) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("SELECT event_id, attempts, last_error, available_at > now() AS delayed FROM event_queue")
        return cur.fetchall()


def dead_letters(db) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("SELECT id, event_id, stage, reason, attempts, replayed_at FROM dead_letters ORDER BY id")
        return cur.fetchall()


def make_due(db) -> None:
    """Every delayed retry becomes due now."""
    with db.transaction() as cur:
        cur.execute("UPDATE event_queue SET available_at = now()")


def tag_digest(db, repository: str, tag: str) -> str | None:
    with db.transaction() as cur:
        cur.execute("SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id"
                    " WHERE r.name = %s AND t.name = %s", (repository, tag))
        row = cur.fetchone()
        return row and row["digest"]


def registry_tags(registry_url: str) -> dict[str, dict[str, str]]:
    """Every repository's tags -> digest, crawled from the registry itself (_catalog, tags lists, GET by tag)."""
    client = RegistryClient(registry_url)
    state = {}
    for repository in client.list_repositories():
        try:
            tags = {tag: client.get_tagged_manifest(repository, tag)[0] for tag in client.list_tags(repository)}
        except NotFound:
            tags = {}
        if tags:
            state[repository] = tags
    return state


def catalog_tags(db) -> dict[str, dict[str, str]]:
    """The catalog's live tags per repository (tombstones left out), as the tags API would list them."""
    with db.transaction() as cur:
        cur.execute("SELECT r.name AS repository, t.name AS tag, t.digest FROM tags t "
                    "JOIN repositories r ON r.id = t.repository_id WHERE t.digest IS NOT NULL")
        rows = cur.fetchall()
    state: dict[str, dict[str, str]] = {}
    for row in rows:
        state.setdefault(row["repository"], {})[row["tag"]] = row["digest"]
    return state


def catalog_manifests(db) -> set[tuple[str, str]]:
    with db.transaction() as cur:
        cur.execute("SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id")
        return {(row["name"], row["digest"]) for row in cur.fetchall()}


def registry_manifests(registry_url: str, pushed: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the ``(repository, digest)`` pairs ever pushed the registry still has (a HEAD each)."""
    client = RegistryClient(registry_url)
    return {(repository, digest) for repository, digest in pushed if client.has_manifest(repository, digest)}


def catalog_events(db, repository: str | None = None) -> list[dict]:
    """The outbox's catalog events in id order (of one repository, or all)."""
    with db.transaction() as cur:
        cur.execute("SELECT * FROM catalog_events"
                    " WHERE %(repository)s::text IS NULL OR repository = %(repository)s ORDER BY id",
                    {"repository": repository})
        return cur.fetchall()


def replay_events(events: list[dict]) -> tuple[dict[str, dict[str, str]], set[tuple[str, str]], list]:
    """What a receiver of every catalog event knows, replayed in order: the live tags per repository, the manifests
    there, and the manifests announced more than once (published twice without a delete in between)."""
    tags: dict[tuple[str, str], str | None] = {}
    manifests: set[tuple[str, str]] = set()
    twice = []
    for event in events:
        repository, kind = event["repository"], event["type"]
        if kind.endswith(".published") or kind == "attachment.added":
            key = (repository, event["digest"])
            if key in manifests and kind != "attachment.added":  # an artifact can become an attachment later
                twice.append(key)
            manifests.add(key)
            if event["tag"]:
                tags[(repository, event["tag"])] = event["digest"]
        elif kind == "tag.moved":
            tags[(repository, event["tag"])] = event["digest"]
        elif kind == "tag.deleted":
            tags[(repository, event["tag"])] = None
        elif kind == "manifest.deleted":
            manifests.discard((repository, event["digest"]))
    live: dict[str, dict[str, str]] = {}
    for (repository, tag), digest in tags.items():
        if digest is not None:
            live.setdefault(repository, {})[tag] = digest
    return live, manifests, twice
