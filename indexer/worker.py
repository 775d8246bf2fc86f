"""The worker: turn one registry event into catalog writes.

At-least-once delivery from the bus plus idempotent writes (store.py) give an
exactly-once effect: a redelivered event id is skipped, and applying events in
any order converges on the same catalog.
"""

from __future__ import annotations

import logging
import signal
import threading

from ocicat.config import Config
from ocicat.db import Database, database_url, storable

from . import store
from .bus import PostgresQueue
from .classify import HELM_CONFIG, classify
from .errors import Busy, PermanentError
from .events import Event
from .helm import ChartError, parse_chart_config
from .registry import NotFound, RegistryClient
from .untrusted import json_object

log = logging.getLogger(__name__)


class Indexer:
    """Applies validated events to the catalog, fetching from the registry as needed."""

    def __init__(self, registry: RegistryClient):
        self.registry = registry

    def __call__(self, cur, raw: dict) -> None:
        self.handle(cur, Event.load(raw))

    def handle(self, cur, event: Event) -> None:
        if not store.claim_event(cur, event.id):
            log.debug("event %s already processed", event.id)
            return
        if not store.lock_repository(cur, event.repository):
            raise Busy(event.repository)
        repository_id = store.ensure_repository(cur, event.repository)
        if event.action == "push":
            self._push(cur, repository_id, event)
        elif event.tag:
            store.set_tag(cur, repository_id, event.tag, None, event.timestamp)
        else:
            store.delete_manifest(cur, repository_id, event.digest, event.timestamp)
        log.info("event %s: %s %s %s", event.id, event.action, event.repository, event.tag or event.digest)

    def _push(self, cur, repository_id: int, event: Event) -> None:
        # Content behind a digest never changes: a manifest already indexed
        # (Helm pushes each chart twice, by digest then by tag) is not refetched.
        if not store.touch_manifest(cur, repository_id, event.digest, event.timestamp):
            try:
                fetched = self.registry.get_manifest(event.repository, event.digest)
            except NotFound:
                log.info("event %s: %s@%s is gone from the registry; nothing to index", event.id, event.repository, event.digest)
                return
            self._save(cur, repository_id, event, fetched.media_type, fetched.body)
        if event.tag:
            store.set_tag(cur, repository_id, event.tag, event.digest, event.timestamp)

    def _save(self, cur, repository_id: int, event: Event, content_type: str, body: bytes) -> None:
        # Everything decoded from the registry is untrusted: made storable right here.
        try:
            doc = storable(json_object(body, "manifest"))
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        classified = classify(content_type, doc, event.tag)
        chart, error = None, None
        if classified.config_media_type == HELM_CONFIG and classified.config_digest:
            try:
                chart = storable(parse_chart_config(self.registry.get_blob(event.repository, classified.config_digest)))
            except (ChartError, PermanentError) as exc:
                error = storable(str(exc))  # a bad chart is recorded on its manifest, and indexing goes on
            except NotFound:
                error = f"config blob {classified.config_digest} is missing from the registry"
        store.save_manifest(cur, repository_id, event.digest, len(body), doc, classified, event.timestamp, chart, error)


def run(config: Config) -> None:
    """``ocicat worker``: consume the bus until SIGTERM or SIGINT, finishing the events in hand."""
    # The worker's commits remove the queue row together with the catalog
    # writes it caused, so an unflushed commit lost in a crash only means the
    # event is processed again: no need to wait for the WAL flush.
    db = Database(database_url(config), maxconn=config.worker_concurrency + 2, synchronous_commit=False)
    registry = RegistryClient(
        config.registry_url, config.registry_username, config.registry_password, pool_size=config.worker_concurrency
    )
    queue = PostgresQueue(db, max_attempts=config.max_attempts)
    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("received %s; finishing in-flight events", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker started: %d threads, registry %s", config.worker_concurrency, config.registry_url)
    queue.consume(Indexer(registry), stop, concurrency=config.worker_concurrency)
    db.close()
    log.info("worker stopped")
