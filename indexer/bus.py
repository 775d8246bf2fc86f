"""The embedded bus: a PostgreSQL queue table between the receiver and the workers.

Publishing and parking happen in one transaction, so the receiver answers the
registry only once every kept event is durable. Workers claim one row at a
time with ``FOR UPDATE SKIP LOCKED`` and delete it in the same transaction as
the catalog writes it caused: a worker that dies mid-event leaves the row for
another. ``NOTIFY`` wakes idle workers at once, so freshness does not depend
on a polling interval.

Also here, because both buses share them: the ``Bus`` interface, and
``deliver``, which runs the handler on one event and settles a failure (retry
later on the queue table, or dead letter) in the same transaction. The Kafka
bus (kafka_bus.py) moves failing messages off their partition that way, and
its workers drain the queue table's retries too.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import psycopg2
import psycopg2.extensions
from marshmallow import ValidationError
from psycopg2.extras import Json, execute_values

from ocicat.config import Config
from ocicat.db import Database, connect, storable
from ocicat.logs import log_context

from . import metrics
from .errors import Busy, PermanentError, TransientError, backoff_seconds

log = logging.getLogger(__name__)

CHANNEL = "ocicat_events"
IDLE_WAKEUP_SECONDS = 1.0  # also how soon a delayed retry becomes due at the latest
PROCESSED_RETENTION = "7 days"  # a redelivery older than this is re-applied, harmlessly
PRUNE_EVERY_SECONDS = 3600
BUSY_DELAY_SECONDS = 0.05  # an event whose repository another worker holds waits this long, attempts untouched


@dataclass(frozen=True)
class DeadLetter:
    payload: object
    reason: str
    stage: str
    event_id: str | None = None
    repository: str | None = None
    attempts: int = 0


def park(cur, letters: list[DeadLetter]) -> None:
    """Record dead letters in the caller's transaction (hostile text made storable)."""
    for letter in letters:
        metrics.DEAD_LETTERS.labels(letter.stage).inc()
    if letters:
        execute_values(
            cur,
            "INSERT INTO dead_letters (event_id, repository, payload, reason, stage, attempts) VALUES %s "
            "ON CONFLICT DO NOTHING",
            [
                (storable(d.event_id), storable(d.repository), Json(storable(d.payload)),
                 storable(d.reason[:2000]), d.stage, d.attempts)
                for d in letters
            ],
        )


# Handler contract: called with an open cursor and the raw event; raises
# TransientError to retry later, Busy to wait a moment, any other exception to
# dead-letter the event.
Handler = Callable[[object, dict], None]


class Bus(Protocol):
    """What the receiver and the worker need from a bus; PostgresQueue and the Kafka bus both are one."""

    def publish(self, events: list[tuple[str, str, dict]], parked: list[DeadLetter]) -> int:
        """Make ``(event_id, repository, raw_event)`` durable and park dead letters; raise if that failed."""

    def consume(self, handler: Handler, stop: threading.Event, concurrency: int = 1) -> None:
        """Hand events to ``handler`` until ``stop`` is set, finishing the ones in hand."""

    def ready(self) -> None:
        """Raise unless the bus can take events now (for /readyz)."""


@dataclass(frozen=True)
class Delivery:
    """One event as a bus hands it over: from a queue row, or from a Kafka message."""

    event_id: str | None
    repository: str | None
    payload: object
    attempts: int = 0  # failed attempts so far


def deliver(cur, handler: Handler, delivery: Delivery, max_attempts: int) -> bool:
    """Run ``handler`` on one event in the caller's transaction; True if it succeeded.

    A failure is settled in the same transaction: the event is put (back) on
    the queue table for later, with an attempt counted unless it was only
    Busy, or parked as a dead letter. So once the caller commits, the event is
    either done or safely elsewhere, and the bus can let it go (delete its
    queue row, commit its Kafka offset) without ever blocking on it. Raises
    only if the database itself failed, and then nothing was settled.
    """
    with log_context(event_id=delivery.event_id, repository=delivery.repository):
        cur.execute("SAVEPOINT handle")
        try:
            handler(cur, delivery.payload)
            return True
        except Exception as exc:  # noqa: BLE001 - a bad event must never stop the worker
            if cur.connection.closed:
                raise  # the connection is gone; the caller retries the whole event
            cur.execute("ROLLBACK TO SAVEPOINT handle")
            _settle_failure(cur, delivery, exc, max_attempts)
            return False


def _settle_failure(cur, delivery: Delivery, exc: Exception, max_attempts: int) -> None:
    if delivery.event_id is None or delivery.repository is None:  # not even an event: nothing to retry
        _park(cur, delivery, f"{type(exc).__name__}: {exc}".strip(), delivery.attempts + 1)
    elif isinstance(exc, Busy):
        _requeue(cur, delivery, BUSY_DELAY_SECONDS, delivery.attempts)
    elif isinstance(exc, (TransientError, psycopg2.OperationalError)):
        # OperationalError on a live connection: statement timeout, deadlock, serialization failure.
        reason = f"transient: {exc}".strip()
        attempts = delivery.attempts + 1
        if attempts >= max_attempts:
            log.warning("event %s dead-lettered after %d attempts: %s", delivery.event_id, attempts, reason)
            _park(cur, delivery, f"gave up after {attempts} attempts: {reason}", attempts)
        else:
            delay = backoff_seconds(attempts)
            log.info("event %s: %s; retry %d in %.1fs", delivery.event_id, reason, attempts, delay)
            _requeue(cur, delivery, delay, attempts, reason)
    else:
        log.warning("event %s dead-lettered: %s", delivery.event_id, exc, exc_info=not _expected(exc))
        _park(cur, delivery, f"{type(exc).__name__}: {exc}".strip(), delivery.attempts + 1)


def _requeue(cur, delivery: Delivery, seconds: float, attempts: int, reason: str | None = None) -> None:
    """Put the event on the queue table, due in ``seconds``: its own row again, or a new one for a Kafka message."""
    cur.execute(
        "INSERT INTO event_queue (event_id, repository, payload, attempts, last_error, available_at) "
        "VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s)) "
        "ON CONFLICT (event_id) DO UPDATE SET attempts = greatest(event_queue.attempts, excluded.attempts), "
        "last_error = coalesce(excluded.last_error, event_queue.last_error), available_at = excluded.available_at",
        (delivery.event_id, delivery.repository, Json(storable(delivery.payload)), attempts,
         None if reason is None else storable(reason[:2000]), seconds),
    )


def _park(cur, delivery: Delivery, reason: str, attempts: int) -> None:
    park(cur, [DeadLetter(payload=delivery.payload, reason=reason, stage="worker", event_id=delivery.event_id,
                          repository=delivery.repository, attempts=attempts)])
    if delivery.event_id is not None:
        cur.execute("DELETE FROM event_queue WHERE event_id = %s", (delivery.event_id,))


class PostgresQueue:
    def __init__(self, db: Database, max_attempts: int = 10):
        self.db = db
        self.max_attempts = max_attempts
        self._generation = 0
        self._wakeup = threading.Condition()

    # -- producer side --------------------------------------------------------

    def publish(self, events: list[tuple[str, str, dict]], parked: list[DeadLetter]) -> int:
        """Durably enqueue ``(event_id, repository, raw_event)`` rows and park dead letters.

        Returns how many events were new; a redelivered event id adds nothing.
        """
        with self.db.transaction() as cur:
            inserted = 0
            if events:
                rows = execute_values(
                    cur,
                    "INSERT INTO event_queue (event_id, repository, payload) VALUES %s "
                    "ON CONFLICT (event_id) DO NOTHING RETURNING 1",
                    [(event_id, repository, Json(raw)) for event_id, repository, raw in events],
                    fetch=True,
                )
                inserted = len(rows)
            park(cur, parked)
            if inserted:
                cur.execute(f"NOTIFY {CHANNEL}")
        return inserted

    def ready(self) -> None:
        # /readyz has pinged the database already: what is left to know is that the queue table is there.
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM event_queue LIMIT 0")

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
        """Claim and handle one due event; False when none is due."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT id, event_id, repository, payload, attempts FROM event_queue "
                "WHERE available_at <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
            row = cur.fetchone()
            if row is None:
                return False
            delivery = Delivery(row["event_id"], row["repository"], row["payload"], row["attempts"])
            if deliver(cur, handler, delivery, self.max_attempts):
                cur.execute("DELETE FROM event_queue WHERE id = %s", (row["id"],))
            return True

    def _listen(self, stop: threading.Event) -> None:
        """Turn NOTIFYs into wake-ups for idle claimers; prune old dedupe ids now and then."""
        conn = None
        last_prune = 0.0
        while not stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.db.url)
                    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
                    conn.cursor().execute(f"LISTEN {CHANNEL}")
                    self._wake()  # events may have arrived while not listening
                if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                    conn.cursor().execute(
                        "DELETE FROM processed_events WHERE processed_at < now() - %s::interval",
                        (PROCESSED_RETENTION,),
                    )
                    last_prune = time.monotonic()
                if select.select([conn], [], [], IDLE_WAKEUP_SECONDS) != ([], [], []):
                    conn.poll()
                    if conn.notifies:
                        conn.notifies.clear()
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


def open_bus(config: Config, db: Database) -> Bus:
    """The bus the configuration asks for: Kafka with OCICAT_KAFKA_BOOTSTRAP, else the PostgreSQL queue."""
    if config.kafka is None:
        return PostgresQueue(db, config.max_attempts)
    from .kafka_bus import KafkaBus  # kafka-python is loaded only where Kafka is configured

    return KafkaBus(db, config)


def describe_bus(config: Config) -> str:
    """The bus in a few words, for start-up log lines."""
    if config.kafka is None:
        return "PostgreSQL queue"
    kafka = config.kafka
    return f"Kafka {','.join(kafka.bootstrap)} topic {kafka.topic} group {kafka.group}"


def _expected(exc: Exception) -> bool:
    """Failures the pipeline anticipates; anything else is logged with a traceback."""
    return isinstance(exc, (PermanentError, ValidationError))
