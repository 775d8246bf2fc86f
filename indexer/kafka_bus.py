"""The scale-out bus: a Kafka topic between the receivers and a consumer group of workers.

Chosen with ``OCICAT_KAFKA_BOOTSTRAP``; the PostgreSQL queue (bus.py) stays
the default. Each event is one message, keyed by its repository, so the
default partitioner keeps one repository's events on one partition, in
order. The receiver answers the registry only after the broker acknowledged
every message with ``acks=all`` (the idempotent producer also keeps retries
in order), and answers 503 when that did not happen in time, so the registry
retries.

Dead letters, delayed retries and dedupe stay in PostgreSQL, next to the
catalog: the consumer side (kafka_consumer.py) moves a failing message off
its partition into the queue table through ``bus.deliver`` and also drains
that table, so ``ocicat dlq replay`` works the same on both buses.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import TopicAlreadyExistsError

from ocicat.config import Config, KafkaConfig
from ocicat.db import Database

from .bus import DeadLetter, Handler, PostgresQueue, park

log = logging.getLogger(__name__)
# kafka-python logs every connection at INFO and every failed reconnect at ERROR (dozens a second while
# a broker is down); ocicat's own lines say what matters (broker unreachable, 503s, commits failing, lag),
# and OCICAT_LOG_LEVEL=DEBUG brings kafka-python's back.
if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

# The receiver's whole budget for one envelope, broker connection and topic check included:
# under the 2 s notification timeout registries are usually given, so a broker outage is a 503, not a timeout.
PUBLISH_TIMEOUT_SECONDS = 1.5
# A message stuck in the producer after its envelope got a 503 is given up on this soon (it may still
# arrive; the worker skips a repeated event id).
DELIVERY_TIMEOUT_MS = 10_000
RECONNECT_BACKOFF_MAX_MS = 1_000  # a broker that comes back is found within a second
READY_TIMEOUT_SECONDS = 1.0


def client_options(kafka: KafkaConfig, role: str) -> dict:
    """The kafka-python settings every client (producer, consumer, admin) shares: where, who, and how securely."""
    options = {
        "bootstrap_servers": list(kafka.bootstrap),
        "client_id": f"ocicat-{role}-{socket.gethostname()}-{os.getpid()}",
        "security_protocol": kafka.security_protocol,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }
    if kafka.sasl_mechanism:
        options.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password,
        )
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if getattr(kafka, name):
            options[name] = getattr(kafka, name)
    return options


def ensure_topic(kafka: KafkaConfig, timeout_ms: int) -> int:
    """Create the topic unless it exists; its partition count.

    Brokers that auto-create topics would do it with their own default
    partition count, so every ocicat client calls this before it touches
    the topic. An existing topic is never changed: adding partitions moves
    repositories to other partitions, which is the operator's call.
    """
    admin = KafkaAdminClient(**client_options(kafka, "admin"), bootstrap_timeout_ms=timeout_ms,
                             request_timeout_ms=timeout_ms)
    try:
        try:
            admin.create_topics(
                {kafka.topic: {"num_partitions": kafka.partitions, "replication_factor": kafka.replication_factor}},
                timeout_ms=timeout_ms, wait_for_metadata=True,
            )
            log.info("created Kafka topic %s: %d partitions, replication factor %d",
                     kafka.topic, kafka.partitions, kafka.replication_factor)
            return kafka.partitions
        except TopicAlreadyExistsError:
            [topic] = admin.describe_topics([kafka.topic])
            count = len(topic["partitions"])
            if count != kafka.partitions:
                log.info("Kafka topic %s exists with %d partitions (OCICAT_KAFKA_PARTITIONS=%d applies only when "
                         "ocicat creates it)", kafka.topic, count, kafka.partitions)
            return count
    finally:
        admin.close()


def encode(raw: dict) -> bytes:
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode()


class KafkaBus:
    """The Bus on Kafka: publish from receivers, consume in a consumer group of workers."""

    def __init__(self, db: Database, config: Config):
        if config.kafka is None:
            raise ValueError("KafkaBus needs OCICAT_KAFKA_BOOTSTRAP")
        self.db = db
        self.kafka = config.kafka
        self.max_attempts = config.max_attempts
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    # -- producer side --------------------------------------------------------

    def publish(self, events: list[tuple[str, str, dict]], parked: list[DeadLetter]) -> int:
        """Send every event and wait until the broker has them all; park dead letters in PostgreSQL.

        Returns how many events were sent: the topic cannot tell a
        redelivered event from a new one, the worker skips it by id.
        Raises (so the receiver answers 503) unless every event was
        acknowledged within PUBLISH_TIMEOUT_SECONDS.
        """
        if events:
            deadline = time.monotonic() + PUBLISH_TIMEOUT_SECONDS
            producer = self._ready_producer(deadline)
            try:
                futures = [producer.send(self.kafka.topic, key=repository.encode(), value=encode(raw))
                           for _event_id, repository, raw in events]
                for future in futures:
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                self._discard(producer)
                raise
        if parked:
            with self.db.transaction() as cur:
                park(cur, parked)
        return len(events)

    def _ready_producer(self, deadline: float) -> KafkaProducer:
        """The shared producer, created (topic checked first) on first use and again after a failure."""
        with self._lock:
            if self._producer is None:
                remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
                ensure_topic(self.kafka, remaining_ms)
                remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
                self._producer = KafkaProducer(
                    **client_options(self.kafka, "receiver"),
                    acks="all",
                    enable_idempotence=True,  # retries can neither duplicate nor reorder a repository's events
                    allow_auto_create_topics=False,
                    bootstrap_timeout_ms=remaining_ms,
                    max_block_ms=int(PUBLISH_TIMEOUT_SECONDS * 1000),
                    request_timeout_ms=int(PUBLISH_TIMEOUT_SECONDS * 1000),
                    delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
                )
            return self._producer

    def _discard(self, producer: KafkaProducer) -> None:
        """Drop a producer that failed: the next envelope starts over with a fresh one and checks the topic again.

        A broker that lost its data (or a topic deleted by hand) comes back
        without the topic, and an idempotent producer can be left in a state
        it does not leave by itself; starting over covers both.
        """
        with self._lock:
            if self._producer is producer:
                self._producer = None
        threading.Thread(target=producer.close, kwargs={"timeout": 1}, name="kafka-producer-close", daemon=True).start()

    def ready(self) -> None:
        """Raise unless a bootstrap broker accepts a connection now (a cheap check, for /readyz).

        The producer's own view lags: it notices a lost broker only at its
        next request, so readiness asks the network directly.
        """
        errors = []
        for server in self.kafka.bootstrap:
            host, _, port = server.rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=READY_TIMEOUT_SECONDS).close()
                return
            except OSError as exc:
                errors.append(f"{server}: {exc}")
        raise ConnectionError("no Kafka broker reachable: " + "; ".join(errors))

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=5)

    # -- consumer side --------------------------------------------------------

    def consume(self, handler: Handler, stop: threading.Event, concurrency: int = 1) -> None:
        """Index this worker's share of the partitions, and the delayed retries, until ``stop`` is set."""
        from .kafka_consumer import GroupMember  # only workers need it

        retries = PostgresQueue(self.db, self.max_attempts)
        drain = threading.Thread(target=retries.consume, args=(handler, stop, concurrency), name="retry-queue",
                                 daemon=True)
        drain.start()
        try:
            GroupMember(self.kafka, self.db, handler, stop, concurrency, self.max_attempts).run()
        finally:
            stop.set()  # if the member failed, the retry drain stops too and the worker exits
            drain.join()
