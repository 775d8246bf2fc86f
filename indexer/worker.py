"""The worker: turn one registry event into catalog writes.

At-least-once delivery from the bus plus idempotent writes (store.py) give an
exactly-once effect: a redelivered event id is skipped, and applying events in
any order converges on the same catalog.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from ocicat.config import Config
from ocicat.db import Database, database_url, storable

from . import metrics, store
from .bus import describe_bus, open_bus
from . import images
from .chart_archive import ChartArchiveError, read_chart_archive
from .classify import HELM_CHART_LAYERS, HELM_CONFIG, HELM_PROVENANCE, IMAGE_CONFIG_TYPES, Classified, attachment_subject, classify
from .errors import Busy, PermanentError
from .events import Event
from .helm import artifacthub_annotations, parse_chart_config, version_order
from .registry import Fetched, NotFound, RegistryClient
from .untrusted import json_object

log = logging.getLogger(__name__)

# Compressed size of a chart layer; Helm's own cap is 100 MiB decompressed.
MAX_CHART_LAYER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Extracted:
    """A manifest decoded, classified and with what it points at fetched and parsed: ready to store."""

    size: int
    doc: dict
    classified: Classified
    details: store.Details


@dataclass(frozen=True)
class Observation:
    """What marks an event as a resync crawl's observation rather than the registry's notification.

    ``extracted``: the manifest as the crawl already fetched and extracted it
    (outside any transaction), so it is not fetched twice. ``reindex``:
    extract again even if indexed (newer extraction code).
    """

    extracted: Extracted | None = None
    reindex: bool = False


class Indexer:
    """Applies validated events to the catalog, fetching from the registry as needed."""

    def __init__(self, registry: RegistryClient):
        self.registry = registry

    def __call__(self, cur, raw: dict) -> None:
        self.handle(cur, Event.load(raw))

    def handle(self, cur, event: Event) -> None:
        """One event from the bus, once: a redelivered id is skipped."""
        if not store.claim_event(cur, event.id):
            log.debug("event %s already processed", event.id)
            return
        with metrics.INDEX_SECONDS.labels(event.action).time():
            self.apply(cur, event)

    def apply(self, cur, event: Event, observation: Observation | None = None) -> None:
        """Bring the catalog in line with ``event``: a registry event, or what a resync crawl observed.

        Both go through here and through the same store rules, so a crawl can
        run while events flow: whichever is newer wins, in any order.
        """
        if not store.lock_repository(cur, event.repository):
            raise Busy(event.repository)
        repository_id = store.ensure_repository(cur, event.repository, event.timestamp)
        if event.action == "push":
            self._push(cur, repository_id, event, observation)
        elif event.tag:
            store.set_tag(cur, repository_id, event.tag, None, event.timestamp)
        else:
            store.delete_manifest(cur, repository_id, event.digest, event.timestamp)
        if observation is None:  # a crawl refreshes the repository once, after all its observations (refresh below)
            store.refresh_repository(cur, repository_id, event.timestamp)
        # One line per event; a crawl's observations (thousands, mostly unchanged) only at DEBUG.
        (log.debug if observation else log.info)("%s: %s %s %s", "resync" if observation else f"event {event.id}",
                                                 event.action, event.repository, event.tag or event.digest)

    def refresh(self, cur, repository: str) -> None:
        """A repository's figures and search document, after a crawl's observations of it.

        Its last-change time stays: a crawl dates observations at the crawl, which is no change time.
        """
        if not store.lock_repository(cur, repository):
            raise Busy(repository)
        store.refresh_repository(cur, store.ensure_repository(cur, repository, datetime.now(timezone.utc)), None)

    def _push(self, cur, repository_id: int, event: Event, observation: Observation | None) -> None:
        # Content behind a digest never changes: a manifest already indexed
        # (Helm pushes each chart twice, by digest then by tag) is not refetched.
        if observation is None:
            known = store.touch_manifest(cur, repository_id, event.digest, event.timestamp)
        else:
            known = store.observe_manifest(cur, repository_id, event.digest, event.timestamp) and not observation.reindex
        if not known:
            extracted = observation.extracted if observation else None
            if extracted is None:
                try:
                    fetched = self.registry.get_manifest(event.repository, event.digest)
                except NotFound:
                    log.info("%s@%s is gone from the registry; nothing to index", event.repository, event.digest)
                    return
                extracted = self.extract(event.repository, event.tag, fetched)
            store.save_manifest(cur, repository_id, event.digest, extracted.size, extracted.doc, extracted.classified,
                                event.timestamp, extracted.details)
        if event.tag:
            subject = attachment_subject(event.tag)
            if subject:  # a cosign or referrers-fallback tag on a manifest pushed untagged first
                store.set_subject(cur, repository_id, event.digest, subject)
            if observation is None:
                store.set_tag(cur, repository_id, event.tag, event.digest, event.timestamp)
            else:
                store.observe_tag(cur, repository_id, event.tag, event.digest, event.timestamp)

    def extract(self, repository: str, tag: str | None, fetched: Fetched) -> Extracted:
        """Decode and classify a fetched manifest, and fetch and parse what it points at (no database needed)."""
        # Everything decoded from the registry is untrusted: made storable right here.
        try:
            doc = storable(json_object(fetched.body, "manifest"))
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        classified = classify(fetched.media_type, doc, tag)
        return Extracted(len(fetched.body), doc, classified, self._details(repository, classified))

    def _details(self, repository: str, classified: Classified) -> store.Details:
        """Fetch and parse what the manifest points at.

        Bad contents (a config that is not JSON, a hostile chart archive, a
        missing blob) are recorded on the manifest and indexing goes on;
        only transient failures propagate, so the event is retried.
        """
        details = store.Details(metadata=images.metadata(classified.annotations))
        try:
            if classified.config_media_type == HELM_CONFIG and classified.config_digest:
                details.chart = parse_chart_config(self.registry.get_blob(repository, classified.config_digest))
                details.chart["prerelease"], details.chart["version_key"] = version_order(details.chart["version"])
                details.error = self._chart_contents(repository, classified, details.chart)
            elif classified.kind == "image" and classified.config_media_type in IMAGE_CONFIG_TYPES:
                blob = self.registry.get_blob(repository, classified.config_digest or "")
                details.image_config = images.parse_image_config(blob)
                details.metadata = images.metadata(classified.annotations, details.image_config["labels"])
        except (ValueError, PermanentError) as exc:  # ChartError and malformed configs are ValueErrors
            details.error = str(exc)
        except NotFound as exc:
            details.error = f"blob missing from the registry: {exc}"
        return store.Details(
            chart=storable(details.chart),
            image_config=storable(details.image_config),
            metadata=storable(details.metadata),
            error=storable(details.error),
        )

    def _chart_contents(self, repository: str, classified: Classified, chart: dict) -> str | None:
        """Add the chart layer's contents to ``chart``; the reason if the layer was refused."""
        chart["has_provenance"] = any(l["media_type"] == HELM_PROVENANCE for l in classified.layers)
        chart["artifacthub"] = artifacthub_annotations(chart["annotations"])
        layer = next((l for l in classified.layers if l["media_type"] in HELM_CHART_LAYERS), None)
        if layer is None:
            return "chart has no chart layer"
        try:
            with self.registry.open_blob(repository, layer["digest"], MAX_CHART_LAYER_BYTES) as blob:
                contents = read_chart_archive(blob)
                blob.verify()
        except (ChartArchiveError, PermanentError) as exc:
            return f"chart layer refused: {exc}"
        except NotFound:
            return f"chart layer {layer['digest']} is missing from the registry"
        chart.update(
            readme=contents.readme,
            values_yaml=contents.values,
            values_schema=contents.values_schema,
            templates=contents.templates,
            crds=contents.crds,
            chart_lock=contents.chart_lock,
        )
        if not chart["dependencies"] and contents.requirements:  # apiVersion v1 charts: requirements.yaml
            chart["dependencies"] = contents.requirements
        chart["warnings"] = contents.warnings
        return None


def run(config: Config) -> None:
    """``ocicat worker``: consume the bus until SIGTERM or SIGINT, finishing the events in hand."""
    kafka = config.kafka is not None
    # On the PostgreSQL queue a commit removes the queue row together with the
    # catalog writes it caused, so an unflushed commit lost in a crash only
    # means the event is processed again: no need to wait for the WAL flush.
    # A Kafka offset is committed once the transaction is, so there the commit
    # must be durable first. Kafka workers also drain the delayed retries,
    # with as many threads again.
    threads = config.worker_concurrency * (2 if kafka else 1)
    crawlers = config.resync_concurrency if config.resync_interval else 0
    db = Database(database_url(config), maxconn=threads + crawlers + 2, synchronous_commit=not kafka)
    registry = RegistryClient(config.registry_url, config.registry_username, config.registry_password,
                              pool_size=threads + 2 * crawlers)  # a crawl's fetch threads too (indexer.resync)
    bus = open_bus(config, db)
    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("received %s; finishing in-flight events", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if config.worker_metrics_listen:
        from prometheus_client import REGISTRY, start_http_server

        REGISTRY.register(metrics.DatabaseCollector(db))
        host, port = config.listen_address_of(config.worker_metrics_listen)
        start_http_server(port, host)
        log.info("worker metrics on http://%s:%d/metrics", host, port)
    reconcile = None
    if config.resync_interval:
        from .resync import run_periodically

        reconcile = threading.Thread(target=run_periodically, name="resync", daemon=True,
                                     args=(db, registry, config.resync_interval, config.resync_concurrency, stop))
        reconcile.start()
    log.info("worker started: %d threads, registry %s, bus: %s", config.worker_concurrency, config.registry_url,
             describe_bus(config))
    bus.consume(Indexer(registry), stop, concurrency=config.worker_concurrency)
    if reconcile is not None:
        reconcile.join(30)  # a crawl stops after the repositories in hand
    db.close()
    log.info("worker stopped")
