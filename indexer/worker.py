"""``ocicat worker``: one process that consumes the bus and indexes each event, and reconciles now and then.

At-least-once delivery from the bus, each event id applied once (bus.dedupe)
and the catalog's order-independent writes give an exactly-once effect in
any delivery order. What an event does to the catalog is indexer.indexing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from ocicat import metrics
from ocicat.config import Config
from ocicat.db import Database, database_url

from . import backfill
from .bus import describe_bus, open_bus
from .delivery.dispatch import Dispatcher
from .delivery.send import Deliverer
from .delivery.topic import CatalogTopic
from .indexing import EventIndexer
from .registry import RegistryClient
from .resync import run_periodically

log = logging.getLogger(__name__)

DELIVER_NICE = 10
DELIVERY_CONNECTIONS = 2  # a deliverer's claims and its recorder's batches: short transactions, one each


def deliverer(config: Config, db: Database) -> Deliverer:
    return Deliverer(db, config.delivery_allow, config.public_url, config.default_public, config.delivery_concurrency,
                     config.delivery_attempts, config.delivery_backoff_seconds, config.events_retention_days,
                     yield_to_indexing=config.kafka is None)


def deliver(config: Config) -> None:
    """``ocicat deliver``: send webhook deliveries only, until SIGTERM or SIGINT (beside workers run with
    OCICAT_WORKER_DELIVERY=false, as ``ocicat serve`` does).

    Its CPU priority is lowered (nice 10), and it slows down while events wait to be indexed (send.BACKLOG): on
    cores it shares with workers, indexing comes first and deliveries take what is left; a fan-out to a hundred
    subscribers costs a hundred requests per event, indexing one.
    """
    os.nice(DELIVER_NICE)
    db = Database(database_url(config), maxconn=DELIVERY_CONNECTIONS)
    stop = threading.Event()
    _stop_on_signals(stop)
    log.info("deliverer started: %d requests at once", config.delivery_concurrency)
    deliverer(config, db).run(stop)
    db.close()
    log.info("deliverer stopped")


def _stop_on_signals(stop: threading.Event) -> None:
    def _stop(signum, _frame):
        log.info("received %s; finishing in-flight work", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


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
    # the bus's threads, a crawl's, one each for the README backfill, the dispatcher's batches and metrics scrapes,
    # and the deliverer's claims and recorded outcomes (short transactions)
    delivery = DELIVERY_CONNECTIONS if config.worker_delivery else 0
    db = Database(database_url(config), maxconn=threads + crawlers + 3 + delivery, synchronous_commit=not kafka)
    registry = RegistryClient(config.registry_url, config.registry_username, config.registry_password,
                              pool_size=threads + 2 * crawlers)  # a crawl's fetch threads too (indexer.resync)
    bus = open_bus(config, db)
    stop = threading.Event()
    _stop_on_signals(stop)
    if config.worker_metrics_listen:
        from prometheus_client import REGISTRY, start_http_server

        REGISTRY.register(metrics.DatabaseCollector(db))
        host, port = config.listen_address_of(config.worker_metrics_listen)
        start_http_server(port, host)
        log.info("worker metrics on http://%s:%d/metrics", host, port)
    threading.Thread(target=backfill.run, args=(db, stop), name="backfill", daemon=True).start()
    dispatcher = Dispatcher(db, config.public_url, CatalogTopic(config.kafka) if kafka else None,
                            config.events_retention_days, yield_to_indexing=not kafka)
    background = [threading.Thread(target=dispatcher.run, args=(stop,), name="dispatch", daemon=True)]
    if config.worker_delivery:
        background.append(threading.Thread(target=deliverer(config, db).run, args=(stop,), name="deliver",
                                           daemon=True))
    for thread in background:
        thread.start()
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
    for thread in background:
        thread.join(15)  # requests in flight finish (a webhook target answers within its 15 s timeouts)
    db.close()
    log.info("worker stopped")
