"""The Kafka bus, consumer side: one worker's membership in the indexers' consumer group.

Delivery. Each partition this member owns is worked through in order, one
batch of fetched messages at a time on a thread pool (at most
OCICAT_WORKER_CONCURRENCY partitions at once); the partition is paused while
its batch runs, so the fetcher never runs ahead of the work. Every message is
prepared outside any transaction and then applied in its own database
transaction (settle.py): on success the catalog
writes; on failure the message is moved off the partition into the
PostgreSQL queue table (a delayed retry, or a dead letter after
OCICAT_MAX_ATTEMPTS), whose retries this worker drains too, so one failing
message never holds up the repositories behind it. Busy (another transaction
holds the repository) is moved the same way without counting an attempt.
Only an unreachable database blocks a partition: its message is tried again,
in place, until the database answers.

Offsets are committed from the polling thread, every poll interval, up to
the last message whose transaction has committed (of finished batches, and
of running ones as far as they got), never further: after a crash between
the two, the messages are delivered again and skipped by event id
(processed_events), so the effect is exactly once.

Rebalances. kafka-python runs the rebalance listener on its IO thread, where
it refuses blocking client calls, so offsets cannot be committed from there.
The listener tells the batches of the partitions being revoked to stop after
the message in hand, and waits for that (REVOKE_GRACE_SECONDS) before the
partitions move: no two workers ever work on one message at once. What
finished after the last commit (at most about one poll interval) goes to the
next owner again, which skips it by id. A batch that outlived the grace keeps
its partition paused, if it comes back to this member, until it ends.

Shutdown (SIGTERM): the running batches stop after their current message,
their offsets are committed, and the consumer leaves the group, so the other
workers take over at once instead of after the session timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg2
from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from ocicat import metrics
from ocicat.config import KafkaConfig
from ocicat.db import Database
from ocicat.errors import backoff_seconds
from ocicat.events import identity

from .kafka_client import client_options, ensure_topic
from .protocol import Delivery, Handler
from .settle import prepare, settle_all

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 100  # also about the longest a settled message waits for its offset commit
# Every poll takes all the fetcher has. kafka-python 3.0.12 parks the rest of a partial poll of a partition
# that is then paused and, once another partition's records were drained, never hands it back after the
# resume: the partition would stall for good. Batches are bounded by the bytes fetched per partition instead,
# and their progress is committed while they run.
MAX_POLL_RECORDS = 1_000_000
MAX_PARTITION_FETCH_BYTES = 256 * 1024  # about a thousand events per partition and batch
# What one fetch may bring in over all partitions: with the partitions paused while their batch runs, this bounds
# the events a worker holds in memory however fast the registry floods the topic (backpressure, not buffering).
FETCH_MAX_BYTES = 8 * 1024 * 1024
SESSION_TIMEOUT_MS = 10_000  # how soon a worker that died without leaving the group loses its partitions
HEARTBEAT_INTERVAL_MS = 3_000
# The loop polls every POLL_TIMEOUT_MS however long a batch takes; this also bounds how long the group waits
# for members to rejoin during a rebalance, so it stays modest.
MAX_POLL_INTERVAL_MS = 30_000
METADATA_MAX_AGE_MS = 10_000  # how soon a re-created topic or added partitions are noticed
REVOKE_GRACE_SECONDS = 5.0  # below the session timeout: the listener holds up heartbeats while it waits
SHUTDOWN_GRACE_SECONDS = 20.0  # below `ocicat serve`'s 30 s before it kills its children
STATS_EVERY_SECONDS = 10.0
CONNECT_TIMEOUT_MS = 5_000
REQUEST_TIMEOUT_MS = 5_000
COMMIT_RETRY_SECONDS = 1.0


def message_delivery(record) -> Delivery:
    """A Kafka message as the handler's input; a value that is not JSON is passed on as text, to be parked."""
    try:
        payload = json.loads(record.value)
    except (TypeError, ValueError, RecursionError):
        payload = record.value.decode("utf-8", "replace") if isinstance(record.value, bytes) else None
    event_id, repository = identity(payload)
    return Delivery(event_id=event_id, repository=repository, payload=payload)


def lag(ends: dict, positions: dict) -> dict:
    """Messages not yet settled per partition: end offset minus the next offset to settle, never negative."""
    return {tp: max(0, end - positions.get(tp, 0)) for tp, end in ends.items() if end is not None}


def consumer_lag(consumer: KafkaConsumer, partitions, progress: dict) -> dict:
    """The lag of ``partitions``: the one place it is computed, for the log line now and for metrics later.

    Ends are the high watermarks from the last fetches (no request needed),
    asked of the broker only for partitions not fetched yet. A partition's
    position is ``progress`` (the next offset this member settles), else the
    group's committed offset, else the start of the log. Must run on the
    polling thread.
    """
    ends = {tp: consumer.highwater(tp) for tp in partitions}
    unknown = [tp for tp, end in ends.items() if end is None]
    if unknown:
        ends.update(consumer.end_offsets(unknown, timeout_ms=REQUEST_TIMEOUT_MS))
    positions = {}
    for tp in partitions:
        position = progress.get(tp)
        if position is None:
            position = consumer.committed(tp, timeout_ms=REQUEST_TIMEOUT_MS)
        if position is None:
            position = consumer.beginning_offsets([tp], timeout_ms=REQUEST_TIMEOUT_MS)[tp]
        positions[tp] = position
    return lag(ends, positions)


class Batch:
    """Fetched messages of one partition, settled in order by one pool thread."""

    def __init__(self, tp: TopicPartition, records: list):
        self.tp = tp
        self.records = records
        self.next_offset: int | None = None  # after the last settled message
        self.stop = threading.Event()  # revoked or shutting down: stop after the message in hand
        self.done = threading.Event()
        self.future: Future | None = None

    @property
    def resume_at(self) -> int:
        """Where the partition goes on after this batch: the first message it did not settle."""
        return self.next_offset if self.next_offset is not None else self.records[0].offset


class GroupMember(ConsumerRebalanceListener):
    """One worker's consumer: polls, hands partitions' batches to the pool, commits what was settled."""

    def __init__(self, kafka: KafkaConfig, db: Database, handler: Handler, stop: threading.Event,
                 concurrency: int, max_attempts: int):
        self.kafka = kafka
        self.db = db
        self.handler = handler
        self.stop = stop
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a batch finished
        self._batches: dict[TopicPartition, Batch] = {}  # running or queued, at most one per partition
        self._settled = 0  # messages settled, for the events/s figure
        # Polling-thread state; the listener runs only inside consumer.poll() and close(), so never alongside.
        self._progress: dict[TopicPartition, int] = {}  # next offset to settle, per owned partition
        self._committed: dict[TopicPartition, int] = {}  # what this member last committed
        self._retry_commit_at = 0.0
        self._commit_failing = False
        self._consumer: KafkaConsumer | None = None
        self.last_lag: dict[TopicPartition, int] = {}

    # -- the polling thread ----------------------------------------------------

    def run(self) -> None:
        consumer = self._connect()
        if consumer is None:
            return
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="kafka-partition")
        stats_at, stats_settled = time.monotonic(), 0
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    records = consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_POLL_RECORDS)
                    failures = 0
                except KafkaError as exc:
                    failures += 1
                    delay = backoff_seconds(failures, base=0.5, cap=10)
                    log.warning("kafka: poll failed (%s); retrying in %.1fs", exc, delay)
                    self.stop.wait(delay)
                    continue
                for tp, messages in records.items():
                    self._start(consumer, pool, tp, messages)
                self._finish(consumer)
                self._commit(consumer)
                if time.monotonic() - stats_at >= STATS_EVERY_SECONDS:
                    with self._lock:
                        settled = self._settled
                    self._report(consumer, settled - stats_settled, time.monotonic() - stats_at)
                    stats_at, stats_settled = time.monotonic(), settled
        finally:
            self._shutdown(consumer, pool)

    def _connect(self) -> KafkaConsumer | None:
        """Check the topic and join the group, retrying until the broker answers or the worker stops."""
        failures = 0
        while not self.stop.is_set():
            try:
                partitions = ensure_topic(self.kafka, CONNECT_TIMEOUT_MS)
                consumer = KafkaConsumer(
                    **client_options(self.kafka, "worker"),
                    group_id=self.kafka.group,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",  # a new group starts at the first event the topic has
                    allow_auto_create_topics=False,
                    max_poll_records=MAX_POLL_RECORDS,
                    max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
                    fetch_max_bytes=FETCH_MAX_BYTES,
                    session_timeout_ms=SESSION_TIMEOUT_MS,
                    heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                    max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
                    metadata_max_age_ms=METADATA_MAX_AGE_MS,
                    request_timeout_ms=REQUEST_TIMEOUT_MS + MAX_POLL_INTERVAL_MS,  # a JoinGroup may take that long
                    bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
                )
                self._consumer = consumer
                consumer.subscribe([self.kafka.topic], listener=self)
                log.info("kafka: joining group %s for topic %s (%d partitions) at %s", self.kafka.group,
                         self.kafka.topic, partitions, ",".join(self.kafka.bootstrap))
                return consumer
            except (KafkaError, OSError) as exc:
                failures += 1
                delay = backoff_seconds(failures, base=1.0, cap=30)
                log.warning("kafka: cannot reach %s (%s); retrying in %.1fs", ",".join(self.kafka.bootstrap),
                            str(exc) or type(exc).__name__, delay)
                self.stop.wait(delay)
        return None

    def _start(self, consumer: KafkaConsumer, pool: ThreadPoolExecutor, tp: TopicPartition, records: list) -> None:
        with self._lock:
            running = tp in self._batches
        if running:  # fetched before the pause took effect: fetch again once the running batch is done
            consumer.seek(tp, records[0].offset)
            consumer.pause(tp)
            return
        consumer.pause(tp)
        batch = Batch(tp, records)
        with self._lock:
            self._batches[tp] = batch
        batch.future = pool.submit(self._work, batch)

    def _finish(self, consumer: KafkaConsumer) -> None:
        """Take in finished batches: their offsets become due for commit, their partitions go on."""
        with self._lock:
            finished = [batch for batch in self._batches.values() if batch.done.is_set()]
            for batch in finished:
                del self._batches[batch.tp]
        assigned = consumer.assignment()
        for batch in finished:
            if batch.tp not in assigned:
                continue  # handed back: the new owner starts from the last commit and skips what was done
            if batch.next_offset is not None:
                self._progress[batch.tp] = batch.next_offset
            if batch.resume_at <= batch.records[-1].offset:  # stopped early by a rebalance, the partition is back
                consumer.seek(batch.tp, batch.resume_at)
            consumer.resume(batch.tp)

    def _commit(self, consumer: KafkaConsumer) -> None:
        """Commit what was settled since the last commit: finished batches, and how far running ones got."""
        with self._lock:
            for tp, batch in self._batches.items():
                if batch.next_offset is not None:
                    self._progress[tp] = batch.next_offset
        assigned = consumer.assignment()
        due = {tp: offset for tp, offset in self._progress.items()
               if tp in assigned and offset != self._committed.get(tp)}
        if not due or time.monotonic() < self._retry_commit_at:
            return
        try:
            consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in due.items()},
                            timeout_ms=REQUEST_TIMEOUT_MS)
        except KafkaError as exc:
            # Tried again while the partitions stay here; a rebalance in between is harmless (all below
            # these offsets is settled), a handed-back partition is redone by its next owner and skipped by id.
            self._retry_commit_at = time.monotonic() + COMMIT_RETRY_SECONDS
            (log.debug if self._commit_failing else log.warning)(
                "kafka: committing offsets failed (%s); retrying every %.0f s", str(exc) or type(exc).__name__,
                COMMIT_RETRY_SECONDS)
            self._commit_failing = True
            return
        if self._commit_failing:
            log.warning("kafka: offsets committed again")
            self._commit_failing = False
        self._committed.update(due)

    def _report(self, consumer: KafkaConsumer, settled: int, seconds: float) -> None:
        """The periodic log line: partitions owned, lag per partition and in total, throughput."""
        assigned = sorted(consumer.assignment())
        try:
            self.last_lag = consumer_lag(consumer, assigned, self._progress)
        except KafkaError as exc:
            log.info("kafka: lag unknown (%s)", str(exc) or type(exc).__name__)
            return
        metrics.KAFKA_LAG.clear()  # partitions handed to another worker are no longer this one's lag
        for tp, n in self.last_lag.items():
            metrics.KAFKA_LAG.labels(str(tp.partition)).set(n)
        total = len(consumer.partitions_for_topic(self.kafka.topic) or ())
        per_partition = " ".join(f"{tp.partition}:{n}" for tp, n in sorted(self.last_lag.items()))
        log.info("kafka: %d of %d partitions; lag %d (%s); %.1f events/s over %.0f s", len(assigned), total,
                 sum(self.last_lag.values()), per_partition or "-", settled / seconds, seconds)

    def _shutdown(self, consumer: KafkaConsumer, pool: ThreadPoolExecutor) -> None:
        """Finish the messages in hand, commit them, and leave the group."""
        with self._lock:
            batches = list(self._batches.values())
        self._stop_batches(batches, SHUTDOWN_GRACE_SECONDS, "shutting down")
        self._finish(consumer)
        self._retry_commit_at = 0.0
        self._commit(consumer)
        pool.shutdown(wait=False, cancel_futures=True)
        try:
            consumer.close(autocommit=False, timeout_ms=REQUEST_TIMEOUT_MS)
        except KafkaError as exc:
            log.warning("kafka: leaving the group failed (%s); the others take over after the session timeout", exc)
        log.info("kafka: left group %s", self.kafka.group)

    # -- pool threads ------------------------------------------------------------

    def _work(self, batch: Batch) -> None:
        try:
            for record in batch.records:
                if batch.stop.is_set() or not self._settle(batch, record):
                    break
                batch.next_offset = record.offset + 1
                with self._lock:
                    self._settled += 1
        except Exception:  # noqa: BLE001 - the partition must go on; what was settled is kept
            log.exception("kafka: partition %d stopped at offset %s", batch.tp.partition, batch.resume_at)
        finally:
            with self._lock:
                batch.done.set()
                self._changed.notify_all()

    def _settle(self, batch: Batch, record) -> bool:
        """Deliver one message and commit its outcome; False if stopped while the database was unreachable."""
        delivery = message_delivery(record)
        prepared = prepare(self.handler, delivery)
        failures = 0
        while True:
            try:
                with self.db.transaction() as cur:
                    settle_all(cur, self.handler, [(delivery, prepared)], self.max_attempts)
                return True
            except Exception as exc:  # noqa: BLE001 - nothing settled: the same message again, in place
                failures += 1
                delay = backoff_seconds(failures, base=0.2, cap=10)
                expected = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
                log.warning("kafka: partition %d offset %d: outcome not recorded (%s); retrying in %.1fs",
                            record.partition, record.offset, str(exc).strip(), delay, exc_info=not expected)
                if batch.stop.wait(delay):
                    return False

    # -- the rebalance listener (kafka-python's IO thread) -----------------------

    def on_partitions_revoked(self, revoked) -> None:
        self._hand_back(revoked, "revoked")

    def on_partitions_lost(self, lost) -> None:
        self._hand_back(lost, "lost")

    def on_partitions_assigned(self, assigned) -> None:
        with self._lock:
            running = [tp for tp in self._batches if tp in assigned]
        if running:  # batches that outlived the grace: their partitions wait for them
            self._consumer.pause(*running)
        owned = sorted(tp.partition for tp in self._consumer.assignment())
        log.info("kafka: assigned partitions %s of topic %s", owned, self.kafka.topic)

    def _hand_back(self, partitions, how: str) -> None:
        for tp in partitions:  # whoever owns it next moves it on; the group's committed offset is the truth again
            self._progress.pop(tp, None)
            self._committed.pop(tp, None)
        with self._lock:
            batches = [batch for tp, batch in self._batches.items() if tp in partitions]
        self._stop_batches(batches, REVOKE_GRACE_SECONDS, f"partitions {how}")
        if partitions:
            log.info("kafka: partitions %s %s", sorted(tp.partition for tp in partitions), how)

    def _stop_batches(self, batches: list[Batch], grace: float, why: str) -> None:
        """Let ``batches`` stop after the message in hand (queued ones at once); wait up to ``grace`` seconds."""
        deadline = time.monotonic() + grace
        with self._lock:
            for batch in batches:
                batch.stop.set()
                if batch.future is not None and batch.future.cancel():
                    batch.done.set()
            while not all(batch.done.is_set() for batch in batches):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("kafka: %s; %d partition(s) still busy after %.0f s, left to finish", why,
                                sum(not b.done.is_set() for b in batches), grace)
                    return
                self._changed.wait(remaining)
