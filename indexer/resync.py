"""Resync: crawl the registry's ``_catalog`` and tags lists and bring the catalog to the registry's state.

Registries lose notifications (in-memory queues, restarts, GitLab's give-up
after N retries) and garbage collection deletes without any. A crawl indexes
what is missing, removes what the registry no longer has and fixes moved
tags, and it is safe while events keep flowing, because each observation is
applied as an event through the worker's own core (indexing.apply_observation)
and the catalog's order-independent writes, under the same repository lock:

- An observation is dated by ocicat's clock just *before* the request that
  made it. Whatever the registry did after that instant carries a later
  event timestamp, so it wins over the observation whichever is applied
  first; whatever it did before is reflected in what the crawl saw.
- A tag seen pointing somewhere is written with ``writes.observe_tag``: it
  moves (or comes back) only if no event or crawl newer than the observation
  set it, and it records ``seen_at``, so a stale event older than the
  observation cannot undo it. A manifest seen records ``seen_at`` too.
- What the crawl did not find is removed the way a delete event would do it,
  dated at the request that did not find it: a tag missing from the tags
  list at the list's time, a manifest no tag reaches and whose HEAD answered
  404 at the HEAD's time. A newer push survives both.
(Timestamps compare ocicat's clock with the registry's: keep both on NTP.)

The crawl goes repository by repository in the registry's lexical order,
``concurrency`` repositories at once, their manifests fetched on a shared pool
of as many threads (so one big repository is not fetched a tag at a time) and
written a chunk of tags per transaction; after each repository it records, in
``resync_checkpoints``, the last repository such that every one up to it is
done (or failed, and reported), so an interrupted crawl resumes after it. One crawl per scope runs at a
time (a session advisory lock); the worker's periodic reconcile
(``OCICAT_RESYNC_INTERVAL``) takes the same lock.

Untagged manifests the catalog does not know yet (children of an index that
lost their events, referrers pushed by digest) are not discovered: the
registry has no API that lists them.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import psycopg2
import psycopg2.extras

from ocicat import metrics
from ocicat.catalog import crawl_state, writes
from ocicat.db import Database, connect
from ocicat.errors import Busy, NotFound, TransientError, backoff_seconds
from ocicat.events import Event
from ocicat.logs import log_context

from .extract import Extracted, Extractor
from .indexing import apply_observation, refresh_after_crawl
from .registry import RegistryClient

log = logging.getLogger(__name__)

ATTEMPTS = 6  # tries per repository before the crawl reports it failed (the next crawl tries it again)
BUSY_WAIT_SECONDS = 30.0  # how long a chunk of observations waits for a repository an event holds
CHUNK = 100  # tags of one repository fetched, then written in one transaction


class ResyncBusy(Exception):
    """Another crawl of the same scope is running."""


class Interrupted(Exception):
    """The crawl was asked to stop (``stop`` set) in the middle of a repository."""


INTERRUPTED = "interrupted"  # the error of a repository the crawl left for the next one


@dataclass
class Outcome:
    """What reconciling one repository did."""

    repository: str
    observed: int = 0  # tags and untagged manifests seen in the registry
    removed: int = 0  # tags and manifests removed because the registry no longer has them
    error: str | None = None


@dataclass(frozen=True)
class Seen:
    """One observation: what the crawl saw, as an event dated just before the request that saw it, and the
    manifest it extracted (when new to the catalog, or re-indexing)."""

    event: Event
    extracted: Extracted | None = None
    reindex: bool = False


@dataclass
class Summary:
    repositories: int = 0
    skipped: int = 0  # done by an earlier, interrupted crawl
    observed: int = 0
    removed: int = 0
    failed: list[Outcome] = field(default_factory=list)


def now() -> datetime:
    return datetime.now(timezone.utc)


def _apply(cur, repository: str, observations: list[Seen]) -> None:
    """A chunk of observations, in the caller's transaction. The repository's figures wait for the end of its
    crawl, but its change number moves with every chunk, so that nothing revalidated by it (a Helm index's ETag)
    stays as it was while the chunk's changes are visible."""
    for seen in observations:
        apply_observation(cur, seen.event, seen.extracted, seen.reindex)
    writes.mark_changed(cur, repository)


class Resync:
    def __init__(self, db: Database, registry: RegistryClient, concurrency: int = 8, reindex: bool = False,
                 stop: threading.Event | None = None):
        self.db = db
        self.stop = stop or threading.Event()  # set: the repositories not begun yet are left for the next crawl
        self.registry = registry
        self.extractor = Extractor(registry)
        self.concurrency = concurrency
        self.reindex = reindex
        self._fetches: ThreadPoolExecutor | None = None  # the manifest fetch pool, for the length of a run()
        self._settling = threading.Lock()  # guards the ``settled`` sets of _reconcile

    def run(self, prefix: str = "", restart: bool = False,
            on_repository: Callable[[Outcome], None] | None = None,
            on_plan: Callable[[int], None] | None = None) -> Summary:
        """Reconcile every repository below ``prefix`` ('' for all); resume an interrupted crawl unless ``restart``.

        ``on_plan`` hears how many repositories are left to do, ``on_repository``
        each one as it is done (for a progress bar). Raises ResyncBusy if another
        crawl of the scope holds it.
        """
        conn = connect(self.db.url)  # the lock lives as long as this session: a killed crawl releases it
        conn.autocommit = True
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                if not crawl_state.resync_lock(cur, prefix):
                    raise ResyncBusy(f"another resync of {prefix or 'the whole registry'!r} is running")
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="resync-fetch") as self._fetches:
                return self._crawl(prefix, restart, on_repository, on_plan)
        finally:
            conn.close()

    def _crawl(self, prefix, restart, on_repository, on_plan) -> Summary:
        names = {n for n in self._retrying(lambda: list(self.registry.list_repositories()))
                 if not prefix or n == prefix or n.startswith(prefix + "/")}
        with self.db.transaction() as cur:
            names.update(crawl_state.catalog_repositories(cur, prefix))
            after = None if restart else crawl_state.resync_checkpoint(cur, prefix)
            if after is None:
                crawl_state.save_resync_checkpoint(cur, prefix, None)
        ordered = sorted(names)
        todo = [n for n in ordered if after is None or n > after]
        summary = Summary(repositories=len(ordered), skipped=len(ordered) - len(todo))
        log.info("resync of %s: %d repositories, %d left to do", prefix or "the whole registry", len(ordered), len(todo))
        if on_plan:
            on_plan(len(todo))
        interrupted = False
        # map() hands results back in order: the checkpoint advances over a contiguous run of repositories done or
        # failed, and stops at the first one left undone by an interruption. A repository that failed is reported
        # and tried again by the next crawl, which starts from the top: were it a checkpoint, a repository that
        # fails every time would keep every crawl from reaching those before it.
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="resync") as pool:
            for outcome in pool.map(self._repository, todo):
                summary.observed += outcome.observed
                summary.removed += outcome.removed
                if outcome.error:
                    summary.failed.append(outcome)
                interrupted = interrupted or outcome.error == INTERRUPTED
                if not interrupted:
                    with self.db.transaction() as cur:
                        crawl_state.save_resync_checkpoint(cur, prefix, outcome.repository)
                metrics.RESYNC_REPOSITORIES.labels("failed" if outcome.error else "done").inc()
                if on_repository:
                    on_repository(outcome)
        if not interrupted:
            with self.db.transaction() as cur:
                crawl_state.save_resync_checkpoint(cur, prefix, ordered[-1] if ordered else None, finished=True)
        return summary

    def _repository(self, name: str) -> Outcome:
        with log_context(repository=name, resync=True):
            outcome = Outcome(name)
            try:
                if self.stop.is_set():
                    raise Interrupted
                self._retrying(lambda: self._reconcile(outcome))
            except Interrupted:
                outcome.error = INTERRUPTED
            except Exception as exc:  # noqa: BLE001 - one repository must not stop the crawl
                outcome.error = f"{type(exc).__name__}: {exc}"
                log.warning("resync of %s failed: %s", name, outcome.error)
            return outcome

    def _reconcile(self, outcome: Outcome) -> None:
        name = outcome.repository
        outcome.observed = outcome.removed = 0
        with self.db.transaction() as cur:
            _, indexed = crawl_state.catalog_state(cur, name)
        # Manifests whose tags need no extraction: those indexed already (unless re-indexing), then those this
        # crawl extracts (the first fetch of a manifest claims it; its other tags need none).
        settled = set() if self.reindex else indexed
        listed_at = now()
        try:
            tags = list(self.registry.list_tags(name))
        except NotFound:  # the registry has forgotten the repository altogether
            tags = []
        reached = set()
        # The tags' manifests are fetched (and, if new, extracted) on the shared fetch pool, outside any
        # transaction; each chunk is then written in one transaction. A big repository is fetched as fast as
        # many small ones, and memory holds at most a chunk per repository.
        for start in range(0, len(tags), CHUNK):
            if self.stop.is_set():
                raise Interrupted
            chunk = [seen for seen in self._fetches.map(lambda tag: self._observe(name, tag, settled),
                                                         tags[start:start + CHUNK]) if seen]
            chunk.sort(key=lambda seen: seen.extracted is None)  # a manifest is stored before its other tags
            self._locked(lambda cur: _apply(cur, name, chunk), name)
            reached.update(seen.event.digest for seen in chunk)
            outcome.observed += len(chunk)
        with self.db.transaction() as cur:
            known_tags, known_manifests = crawl_state.catalog_state(cur, name)
        # What the crawl did not reach, in one transaction: tags the list no longer has, then each manifest no
        # tag reaches, kept (as an untagged manifest) or removed by what a HEAD (on the fetch pool) says.
        later = [Seen(Event("resync", listed_at, "delete", name, None, tag))
                 for tag in sorted(set(known_tags) - set(tags))]
        later += self._fetches.map(lambda digest: self._check(name, digest), sorted(known_manifests - reached))
        if later:
            self._locked(lambda cur: _apply(cur, name, later), name)
            outcome.removed += sum(seen.event.action == "delete" for seen in later)
            outcome.observed += sum(seen.event.action == "push" for seen in later)
        if outcome.observed or outcome.removed:
            self._locked(lambda cur: refresh_after_crawl(cur, name), name)

    def _observe(self, name: str, tag: str, settled: set[str]) -> Seen | None:
        """What the registry says ``tag`` points at, dated just before asking; None if the tag is gone by now.

        The manifest is extracted unless it is ``settled`` (see _reconcile).
        """
        seen_at = now()
        try:
            digest, fetched = self.registry.get_tagged_manifest(name, tag)
        except NotFound:  # deleted since the list: the removal, or its event, deals with it
            return None
        with self._settling:
            fresh = digest not in settled
            settled.add(digest)
        extracted = self.extractor.extract(name, tag, fetched) if fresh else None
        return Seen(Event("resync", seen_at, "push", name, digest, tag), extracted, self.reindex and fresh)

    def _check(self, name: str, digest: str) -> Seen:
        """An untagged manifest, found still there or gone by a request dated just before it: a HEAD, or a GET
        and an extraction when re-indexing."""
        checked_at = now()
        if not self.reindex:
            there = self.registry.has_manifest(name, digest)
            return Seen(Event("resync", checked_at, "push" if there else "delete", name, digest, None))
        try:
            extracted = self.extractor.extract(name, None, self.registry.get_manifest(name, digest))
        except NotFound:
            return Seen(Event("resync", checked_at, "delete", name, digest, None))
        return Seen(Event("resync", checked_at, "push", name, digest, None), extracted, reindex=True)

    def _locked(self, work, repository: str) -> None:
        """``work(cur)`` in a transaction of its own, waiting while an event holds the repository."""
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while True:
            try:
                with self.db.transaction() as cur:
                    work(cur)
                return
            except Busy:
                if time.monotonic() > deadline:
                    raise TransientError(f"{repository} stayed locked for {BUSY_WAIT_SECONDS:.0f}s") from None
                time.sleep(0.02)

    @staticmethod
    def _retrying(work):
        """Run ``work`` again after transient failures (registry or database), with backoff, a few times."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return work()
            # a database that went away is transient here too
            except (TransientError, psycopg2.OperationalError, psycopg2.InterfaceError):
                if attempt == ATTEMPTS:
                    raise
            time.sleep(backoff_seconds(attempt, base=0.5, cap=10))


def run_periodically(db: Database, registry: RegistryClient, interval: int, concurrency: int,
                     stop: threading.Event) -> None:
    """The worker's reconcile loop (``OCICAT_RESYNC_INTERVAL``): crawl the whole registry every ``interval`` s.

    Several workers share the scope lock, so one of them crawls at a time; the
    checkpoint lets the next crawl resume where a killed worker stopped.
    """
    resync = Resync(db, registry, concurrency, stop=stop)
    while not stop.wait(interval):
        try:
            summary = resync.run()
            log.info("periodic resync: %d repositories, %d observed, %d removed, %d failed", summary.repositories,
                     summary.observed, summary.removed, len(summary.failed))
        except ResyncBusy:
            log.info("periodic resync skipped: another crawl is running")
        except Exception:  # noqa: BLE001 - the next interval tries again
            log.warning("periodic resync failed", exc_info=True)
