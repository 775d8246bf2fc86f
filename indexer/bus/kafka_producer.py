"""The Kafka bus, producer side: the receivers send each event to the topic.

Each event is one message, keyed by its repository, so the default
partitioner keeps one repository's events on one partition, in order. The
receiver answers the registry only after the broker acknowledged every
message with ``acks=all`` (the idempotent producer also keeps retries in
order), and answers 503 when that did not happen in time, so the registry
retries. Dead letters go to PostgreSQL, as on the PostgreSQL queue.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from kafka import KafkaProducer

from ocicat.config import KafkaConfig
from ocicat.db import Database
from ocicat.events import DeadLetter, Event

from . import dead_letters
from .kafka_client import client_options, ensure_topic

# The receiver's whole budget for one envelope, broker connection and topic check included:
# under the 2 s notification timeout registries are usually given, so a broker outage is a 503, not a timeout.
PUBLISH_TIMEOUT_SECONDS = 1.5
# A message stuck in the producer after its envelope got a 503 is given up on this soon (it may still
# arrive; the worker skips a repeated event id).
DELIVERY_TIMEOUT_MS = 10_000
READY_TIMEOUT_SECONDS = 1.0


def encode(raw: dict) -> bytes:
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode()


class KafkaPublisher:
    """The receivers' side of the Kafka bus: every event a message, acknowledged before the registry's answer."""

    def __init__(self, db: Database, kafka: KafkaConfig):
        self.db = db  # for dead letters
        self.kafka = kafka
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    # -- producer side --------------------------------------------------------

    def publish(self, events: list[Event], parked: list[DeadLetter]) -> int:
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
                futures = [producer.send(self.kafka.topic, key=event.repository.encode(), value=encode(event.payload()))
                           for event in events]
                for future in futures:
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                self._discard(producer)
                raise
        if parked:
            with self.db.transaction() as cur:
                dead_letters.park(cur, parked)
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
