"""What the registry did, applied to the catalog: the event path and the crawl path, over one core.

- The event path (:class:`EventIndexer`, the handler a worker gives the bus):
  ``prepare`` validates the event and, for a push of a manifest the catalog
  does not hold yet, fetches and extracts it with no transaction open;
  ``apply`` writes it in the bus's transaction, which the bus runs once per
  event id.
- The crawl path (:func:`apply_observation`, for indexer.resync): what a
  crawl saw, fetched and extracted by the crawl itself, written with the
  crawl's rules (``seen_at``, see ocicat.catalog.writes), the repository's
  figures refreshed once after all its observations (:func:`refresh_after_crawl`).

Both write under the repository's lock through the catalog's
order-independent writes, so a crawl can run while events flow: whichever is
newer wins, in any order. Neither fetches inside a transaction. Both record
the catalog events of what they changed (ocicat.catalog.outbox) in the same
transaction, the crawl's marked as such.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ocicat import metrics
from ocicat.catalog import outbox, upgrades, writes
from ocicat.db import Database
from ocicat.errors import Busy, NotFound
from ocicat.events import Event
from ocicat.oci.classify import attachment_subject

from .extract import Extracted, Extractor
from .registry import RegistryClient

log = logging.getLogger(__name__)


# -- the shared core: under the repository's lock, in the caller's transaction ----------------


def _locked_repository(cur, name: str, at: datetime) -> int:
    """The repository's id, created on first sight, with its lock held until the transaction ends."""
    if not writes.lock_repository(cur, name):
        raise Busy(name)
    return writes.ensure_repository(cur, name, at)


def _save(cur, repository_id: int, event: Event, extracted: Extracted, crawl: bool, write_tag) -> None:
    """Write a fetched manifest and its tag (``write_tag``: the event's rule or the crawl's), then announce what
    changed: the manifest if it is new to the catalog, with its tag if the tag now points at it (a tag write refused
    as older than the tag's last change is not announced), and the tag if it moved from another manifest.

    A re-index (resync --reindex) announces nothing new: nothing changed for the world outside."""
    details, classified = extracted.details, extracted.classified
    manifest_id, new = writes.save_manifest(cur, repository_id, event.digest, extracted.size, extracted.doc,
                                            classified, event.timestamp, details)
    upgrade = None
    if details.chart:  # no report for a chart indexed with an error: it is nobody's base either
        upgrade = upgrades.write_reports(cur, repository_id, manifest_id,
                                         None if details.error else details.chart["version_key"])
    change = _write_tag(cur, repository_id, event, crawl, write_tag)
    # An attachment by its tag only (cosign's sha256-<hex>.sig) was announced by _write_tag, as attachment.added.
    if new and not (classified.subject_digest is None and attachment_subject(event.tag)):
        tagged = change is not None and change.digest == event.digest
        chart = details.chart and {k: details.chart.get(k) for k in ("name", "version", "app_version", "description")}
        if chart:
            chart["upgrade"] = upgrade and {k: upgrade[k] for k in ("from", "breaking", "changes")}
        outbox.record(cur, outbox.published_type(classified.kind, classified.subject_digest), event.repository,
                      event.timestamp, crawl=crawl, tag=event.tag if tagged else None, digest=event.digest,
                      kind=classified.kind, chart=chart, subject_digest=classified.subject_digest, error=details.error)
    _announce_tag(cur, repository_id, event, change, crawl, published=new)


def _write_tag(cur, repository_id: int, event: Event, crawl: bool, write_tag) -> writes.TagChange | None:
    """The event's tag written (a cosign or referrers-fallback tag also marks its manifest an attachment)."""
    if not event.tag:
        return None
    subject = attachment_subject(event.tag)
    if subject:
        kind = writes.set_subject(cur, repository_id, event.digest, subject)
        if kind is not None:
            outbox.record(cur, "attachment.added", event.repository, event.timestamp, crawl=crawl, tag=event.tag,
                          digest=event.digest, kind=kind, chart=None, subject_digest=subject, error=None)
    return write_tag(cur, repository_id, event.tag, event.digest, event.timestamp)


def _announce_tag(cur, repository_id: int, event: Event, change: writes.TagChange | None, crawl: bool,
                  published: bool = False) -> None:
    """``tag.moved`` for a tag pointed somewhere new, ``tag.deleted`` for one removed; nothing for a tag written
    again where it was, or for a new tag of a manifest just announced with it (``published``)."""
    if change is None or not change.moved:
        return
    if change.digest is None:
        outbox.record(cur, "tag.deleted", event.repository, event.timestamp, crawl=crawl, tag=event.tag,
                      previous_digest=change.previous,
                      kind=writes.describe_manifest(cur, repository_id, change.previous)["kind"])
    elif change.previous is not None or not published:
        outbox.record(cur, "tag.moved", event.repository, event.timestamp, crawl=crawl, tag=event.tag,
                      digest=change.digest, previous_digest=change.previous,
                      **writes.describe_manifest(cur, repository_id, change.digest))


def _remove(cur, repository_id: int, event: Event, crawl: bool) -> None:
    """A tag deleted, or a manifest (and the tags on it) deleted, unless something newer says otherwise."""
    if event.tag:
        _announce_tag(cur, repository_id, event, writes.set_tag(cur, repository_id, event.tag, None, event.timestamp),
                      crawl)
        return
    deleted, tags = writes.delete_manifest(cur, repository_id, event.digest, event.timestamp)
    kind = deleted.kind if deleted else writes.describe_manifest(cur, repository_id, event.digest)["kind"]
    for tag in tags:
        outbox.record(cur, "tag.deleted", event.repository, event.timestamp, crawl=crawl, tag=tag,
                      previous_digest=event.digest, kind=kind)
    if deleted is not None:
        outbox.record(cur, "manifest.deleted", event.repository, event.timestamp, crawl=crawl, digest=event.digest,
                      kind=deleted.kind, chart=deleted.chart, subject_digest=deleted.subject_digest, tags=tags)


# -- the event path ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedEvent:
    event: Event
    extracted: Extracted | None = None  # a push of a manifest the catalog did not hold, fetched and extracted
    gone: bool = False  # a push of a manifest the registry no longer has
    started: float = 0.0  # perf_counter() when preparing began, for the index latency metric


class EventIndexer:
    """The bus handler of ``ocicat worker``: registry events into the catalog."""

    def __init__(self, db: Database, registry: RegistryClient):
        self.db = db
        self.registry = registry
        self.extractor = Extractor(registry)

    def prepare(self, payload: object) -> PreparedEvent:
        """Validate the event; fetch and extract a pushed manifest unless the catalog has it already.

        Content behind a digest never changes, so a manifest pushed again (Helm
        pushes each chart twice, by digest then by tag) is not fetched again.
        """
        started = time.perf_counter()
        event = Event.load(payload)
        if event.action != "push" or self._indexed(event):
            return PreparedEvent(event, started=started)
        try:
            fetched = self.registry.get_manifest(event.repository, event.digest)
        except NotFound:
            return PreparedEvent(event, gone=True, started=started)
        return PreparedEvent(event, self.extractor.extract(event.repository, event.tag, fetched), started=started)

    def _indexed(self, event: Event) -> bool:
        with self.db.transaction() as cur:
            return writes.manifest_indexed(cur, event.repository, event.digest)

    def apply(self, cur, prepared: PreparedEvent, later: list) -> None:
        """Write the event in the bus's transaction; its repository is refreshed by ``finish``."""
        event = prepared.event
        repository_id = _locked_repository(cur, event.repository, event.timestamp)
        if event.action == "delete":
            _remove(cur, repository_id, event, crawl=False)
        elif writes.touch_manifest(cur, repository_id, event.digest, event.timestamp):
            _announce_tag(cur, repository_id, event, _write_tag(cur, repository_id, event, False, writes.set_tag),
                          crawl=False)
        elif prepared.extracted is not None:
            _save(cur, repository_id, event, prepared.extracted, False, writes.set_tag)
        elif prepared.gone:
            log.info("%s@%s is gone from the registry; nothing to index", event.repository, event.digest)
        else:  # held when prepared, deleted since: prepared again, it is fetched (or found gone)
            raise Busy(f"{event.repository}@{event.digest} was removed from the catalog while the event was prepared")
        later.append((repository_id, event.timestamp))
        metrics.INDEX_SECONDS.labels(event.action).observe(time.perf_counter() - prepared.started)
        log.info("event %s: %s %s %s", event.id, event.action, event.repository, event.tag or event.digest)

    def finish(self, cur, later: list) -> None:
        """Refresh each repository the transaction's events changed, once (its last-change time: the newest
        event's), while its lock is still held."""
        newest: dict[int, datetime] = {}
        for repository_id, at in later:
            newest[repository_id] = max(at, newest.get(repository_id, at))
        writes.refresh_repositories(cur, newest)


# -- the crawl path --------------------------------------------------------------------------------


def apply_observation(cur, event: Event, extracted: Extracted | None, reindex: bool = False) -> None:
    """What a crawl saw, as an event dated just before the request that saw it (indexer.resync).

    ``extracted``: the manifest, fetched and extracted by the crawl, when it
    was new to the catalog (or ``reindex``). A manifest the catalog no longer
    holds and the crawl did not extract (removed by an event since the crawl
    read the catalog) is left to that event and to the next crawl.
    """
    repository_id = _locked_repository(cur, event.repository, event.timestamp)
    if event.action == "delete":
        _remove(cur, repository_id, event, crawl=True)
    elif writes.observe_manifest(cur, repository_id, event.digest, event.timestamp) and not reindex:
        _announce_tag(cur, repository_id, event, _write_tag(cur, repository_id, event, True, writes.observe_tag),
                      crawl=True)
    elif extracted is not None:
        _save(cur, repository_id, event, extracted, True, writes.observe_tag)
    # Thousands of these per crawl, mostly unchanged: DEBUG only.
    log.debug("resync: %s %s %s", event.action, event.repository, event.tag or event.digest)


def refresh_after_crawl(cur, repository: str) -> None:
    """A repository's figures and search document, after a crawl's observations of it.

    Its last-change time stays: a crawl dates observations at the crawl, which is no change time.
    """
    writes.refresh_repositories(cur, {_locked_repository(cur, repository, datetime.now(timezone.utc)): None})
