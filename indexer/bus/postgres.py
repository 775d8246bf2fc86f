"""The embedded bus: a PostgreSQL queue table between the receiver and the workers.

Publishing and parking happen in one transaction, so the receiver answers the
registry only once every kept event is durable. ``NOTIFY`` wakes idle workers
at once, so freshness does not depend on a polling interval.

A worker leases the oldest due row (``FOR UPDATE SKIP LOCKED``, then
``available_at`` moved past the lease) with a few more of its repository's,
prepares the events with no transaction open (registry fetches of any size
hold no connection and no row lock), and then, in one transaction, locks the
rows again, applies the events and deletes the rows. While it prepares, its
listener thread renews the lease; a worker that dies stops renewing, and its
events are due again within ``queue_table.LEASE_SECONDS``. A row whose lease
ran out while its worker still held it (a stalled registry) may be taken over
and prepared twice, but is applied once: the first transaction to lock it
settles it.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg2
import psycopg2.extensions

from ocicat.db import Database, listen, notified
from ocicat.errors import backoff_seconds
from ocicat.events import DeadLetter, Event

from . import dead_letters, dedupe, queue_table
from .protocol import Delivery, Handler
from .settle import prepare, settle_all

log = logging.getLogger(__name__)

IDLE_WAKEUP_SECONDS = 1.0  # also how soon a delayed retry becomes due at the latest
PRUNE_EVERY_SECONDS = 3600
RENEW_EVERY_SECONDS = queue_table.LEASE_SECONDS / 3
# Events of one repository claimed, prepared and settled together: one transaction, one claim, and the repository's
# figures and search document refreshed once for them all (bench/ingest.py --profile). Each is prepared in turn, so
# the last waits for the others' fetches: a handful, not a hundred.
BATCH = 8


class PostgresQueue:
    def __init__(self, db: Database, max_attempts: int = 10):
        self.db = db
        self.max_attempts = max_attempts
        self._generation = 0
        self._wakeup = threading.Condition()
        self._leased: set[int] = set()  # rows being prepared by this process's claimers
        self._leased_lock = threading.Lock()

    # -- producer side --------------------------------------------------------

    def publish(self, events: list[Event], parked: list[DeadLetter]) -> int:
        """Durably enqueue ``events`` and park dead letters; how many events were new (a redelivered id adds nothing)."""
        with self.db.transaction() as cur:
            inserted = queue_table.enqueue(cur, [(e.id, e.repository, e.payload()) for e in events]) if events else 0
            dead_letters.park(cur, parked)
            if inserted:
                queue_table.notify(cur)
        return inserted

    def ready(self) -> None:
        # /readyz has pinged the database already: what is left to know is that the queue table is there.
        with self.db.transaction() as cur:
            queue_table.ready(cur)

    # -- consumer side --------------------------------------------------------

    def consume(self, handler: Handler, stop: threading.Event, concurrency: int = 1) -> None:
        """Run ``concurrency`` claiming threads plus one listener until ``stop`` is set."""
        threads = [threading.Thread(target=self._listen, args=(stop,), name="queue-listener", daemon=True)]
        threads += [
            threading.Thread(target=self._claim_loop, args=(handler, stop), name=f"worker-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _claim_loop(self, handler: Handler, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            with self._wakeup:
                generation = self._generation
            try:
                handled = self.process_one(handler)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a claimer thread must outlive any failure
                failures += 1
                delay = backoff_seconds(failures, base=0.2, cap=10)
                expected = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
                log.warning("claiming failed (%s); retrying in %.1fs", str(exc).strip(), delay, exc_info=not expected)
                stop.wait(delay)
                continue
            if not handled:
                with self._wakeup:
                    if self._generation == generation:
                        self._wakeup.wait(IDLE_WAKEUP_SECONDS)

    def process_one(self, handler: Handler) -> bool:
        """Lease, prepare, apply and settle the oldest due event, with up to BATCH - 1 more of its repository's;
        False when none is due. Each event is settled on its own (a savepoint each): one that fails is retried or
        parked, and the others are applied all the same."""
        with self.db.transaction() as cur:
            rows = queue_table.claim(cur, BATCH)
        if not rows:
            return False
        ids = [row["id"] for row in rows]
        with self._leased_lock:
            self._leased.update(ids)
        try:
            work = []
            for row in rows:
                delivery = Delivery(row["event_id"], row["repository"], row["payload"], row["attempts"])
                work.append((row["id"], delivery, prepare(handler, delivery)))
        finally:
            with self._leased_lock:  # not renewed past here: a retry due in 50 ms must not be pushed to the lease
                self._leased.difference_update(ids)
        with self.db.transaction() as cur:
            held = queue_table.hold(cur, ids)
            applied = settle_all(cur, handler, [(d, p) for row_id, d, p in work if row_id in held], self.max_attempts)
            queue_table.remove(cur, [delivery.event_id for delivery in applied])
        return True

    def _listen(self, stop: threading.Event) -> None:
        """Turn NOTIFYs into wake-ups for idle claimers; renew leases; prune old dedupe ids now and then."""
        conn = None
        last_prune = last_renew = 0.0
        while not stop.is_set():
            try:
                if conn is None:
                    conn = listen(self.db.url, queue_table.CHANNEL)
                    self._wake()  # events may have arrived while not listening
                if time.monotonic() - last_renew > RENEW_EVERY_SECONDS:
                    with self._leased_lock:
                        leased = list(self._leased)
                    if leased:
                        queue_table.renew(conn.cursor(), leased)
                    last_renew = time.monotonic()
                if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                    dedupe.prune(conn.cursor())
                    last_prune = time.monotonic()
                if notified(conn, IDLE_WAKEUP_SECONDS):
                    self._wake()
            except psycopg2.Error as exc:
                log.warning("queue listener lost its connection (%s); reconnecting", str(exc).strip())
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(1.0)
        if conn is not None:
            conn.close()
        self._wake()

    def _wake(self) -> None:
        with self._wakeup:
            self._generation += 1
            self._wakeup.notify_all()
