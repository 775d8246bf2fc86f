"""The dispatcher: catalog events from the outbox to the outputs, in order, by one process of all the workers.

The outputs: the Kafka catalog topic when Kafka is configured (indexer.delivery.topic), and the webhook
subscriptions, each event fanned out into one delivery per subscription it matches (ocicat.subscriptions.fan_out),
which the deliverers send (indexer.delivery.send).

Every worker runs a dispatcher thread; the one holding a session-level advisory lock works, the others wait to take
over (a killed holder's session ends, and with it the lock). One dispatcher reading the outbox in id order keeps one
repository's events in order on every output. A batch is handed to the outputs and marked dispatched in one
transaction: a crash in between hands it over again (at least once; receivers dedupe by the event's id). Woken by
the NOTIFY each recorded event sends at commit, so an event is out within milliseconds of its catalog change.
While events wait to be indexed, it hands out one event at a time, paced (indexer.delivery.yielding). Dispatched
events are kept for ``OCICAT_EVENTS_RETENTION_DAYS``, then pruned.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import psycopg2
import psycopg2.extensions
from kafka.errors import KafkaError

from ocicat import metrics, subscriptions
from ocicat.catalog import outbox
from ocicat.db import Database, listen, notified

from . import yielding
from .render import cloudevent
from .topic import CatalogTopic

log = logging.getLogger(__name__)

BATCH = 500
IDLE_WAKEUP_SECONDS = 1.0  # also the longest a standby waits before trying the lock again
PRUNE_EVERY_SECONDS = 600
MAX_BACKOFF_SECONDS = 30.0
_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('ocicat.catalog_events.dispatch', 0)) AS locked"


class Dispatcher:
    def __init__(self, db: Database, public_url: str, topic: CatalogTopic | None, retention_days: int,
                 yield_to_indexing: bool):
        self.db = db
        self.yield_to_indexing = yield_to_indexing  # the bus is the PostgreSQL queue, whose backlog it sees (yielding)
        self.public_url = public_url
        self.topic = topic
        self.retention = timedelta(days=retention_days)

    def run(self, stop: threading.Event) -> None:
        """Dispatch until ``stop``; retry with backoff whatever fails (the database, the broker)."""
        conn = None
        failures = 0
        last_prune = 0.0
        while not stop.is_set():
            try:
                if conn is None:
                    conn = self._take_over()
                    if conn is None:
                        stop.wait(IDLE_WAKEUP_SECONDS)
                        continue
                if self.yield_to_indexing and yielding.indexing_busy(self.db):
                    self.dispatch_batch(1)
                    stop.wait(yielding.PAUSE_SECONDS)
                    continue
                if self.dispatch_batch(BATCH) == BATCH:
                    continue  # more are waiting
                failures = 0
                if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                    with self.db.transaction() as cur:
                        pruned = outbox.prune(cur, self.retention)
                    if pruned:
                        log.info("pruned %d catalog events older than %s", pruned, self.retention)
                    last_prune = time.monotonic()
                notified(conn, IDLE_WAKEUP_SECONDS)
            except (psycopg2.Error, KafkaError, OSError) as exc:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** failures)
                log.warning("dispatching catalog events failed (%s); retrying in %.0f s", str(exc).strip(), delay)
                if conn is not None:
                    conn.close()  # the lock goes with it: another worker may take over meanwhile
                conn = None
                stop.wait(delay)
        if conn is not None:
            conn.close()
        if self.topic is not None:
            self.topic.close()

    def _take_over(self):
        """A listening connection holding the dispatcher's lock, or None while another process holds it."""
        conn = listen(self.db.url, outbox.CHANNEL)
        cur = conn.cursor()
        cur.execute(_LOCK)
        if not cur.fetchone()[0]:
            conn.close()
            return None
        log.info("dispatching catalog events%s", f" to Kafka topic {self.topic.topic}" if self.topic else "")
        return conn

    def dispatch_batch(self, limit: int) -> int:
        """Hand the oldest undispatched events (up to ``limit``) to the outputs and mark them, in one transaction; how
        many there were."""
        with self.db.transaction() as cur:
            rows = outbox.undispatched(cur, limit)
            if rows:
                if self.topic is not None:
                    self.topic.send([cloudevent(row, self.public_url) for row in rows])
                ids = [row["id"] for row in rows]
                subscriptions.fan_out(cur, ids)
                outbox.mark_dispatched(cur, ids)
        for row in rows:
            metrics.CATALOG_EVENTS_DISPATCHED.labels(row["type"]).inc()
        return len(rows)
