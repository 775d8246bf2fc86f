"""``ocicat worker``: one process that consumes the bus and indexes each event, and reconciles now and then.

At-least-once delivery from the bus, each event id applied once (bus.dedupe)
and the catalog's order-independent writes give an exactly-once effect in
any delivery order. What an event does to the catalog is indexer.indexing.
"""

from __future__ import annotations

import logging
import signal
import threading

from ocicat import metrics
from ocicat.config import Config
from ocicat.db import Database, database_url

from . import readme_backfill
from .bus import describe_bus, open_bus
from .delivery.dispatch import Dispatcher
from .delivery.topic import CatalogTopic
from .indexing import EventIndexer
from .registry import RegistryClient
from .resync import run_periodically

log = logging.getLogger(__name__)


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
    # the bus's threads, a crawl's, and one each for the README backfill, the dispatcher, metrics scrapes and a spare
    db = Database(database_url(config), maxconn=threads + crawlers + 4, synchronous_commit=not kafka)
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
    threading.Thread(target=readme_backfill.run, args=(db, stop), name="readme-backfill", daemon=True).start()
    dispatcher = Dispatcher(db, config.public_url, CatalogTopic(config.kafka) if kafka else None,
                            config.events_retention_days)
    dispatch = threading.Thread(target=dispatcher.run, args=(stop,), name="dispatch", daemon=True)
    dispatch.start()
    reconcile = None
    if config.resync_interval:
        reconcile = threading.Thread(target=run_periodically, name="resync", daemon=True,
                                     args=(db, registry, config.resync_interval, config.resync_concurrency, stop))
        reconcile.start()
    log.info("worker started: %d threads, registry %s, bus: %s", config.worker_concurrency, config.registry_url,
             describe_bus(config))
    bus.consume(EventIndexer(db, registry), stop, concurrency=config.worker_concurrency)
    if reconcile is not None:
        reconcile.join(30)  # a crawl stops after the repositories in hand
    dispatch.join(15)
    db.close()
    log.info("worker stopped")
