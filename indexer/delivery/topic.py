"""The Kafka catalog topic (``OCICAT_KAFKA_CATALOG_TOPIC``, ``ocicat.catalog`` by default): every catalog event, for
consumers that want the whole stream.

Each event is one message in the CloudEvents Kafka binding's structured mode, keyed by its repository, so one
repository's events stay in order on one partition (the dispatcher sends them in outbox order and the idempotent
producer keeps retries in order). A batch counts as sent only once the broker acknowledged every message with
``acks=all``; a consumer may see an event twice after a crash between the broker's acknowledgement and the outbox
update, and dedupes by the CloudEvent's ``id``.
"""

from __future__ import annotations

import threading

from kafka import KafkaProducer

from ocicat.config import KafkaConfig

from ..bus.kafka_client import client_options, ensure_topic
from .render import CloudEvent, kafka_message

SEND_TIMEOUT_SECONDS = 10.0


class CatalogTopic:
    def __init__(self, kafka: KafkaConfig):
        self.kafka = kafka
        self.topic = kafka.catalog_topic
        self._producer: KafkaProducer | None = None

    def send(self, events: list[CloudEvent]) -> None:
        """Send every event and wait until the broker has them all; raise (the batch is sent again) otherwise."""
        producer = self._ready()
        try:
            futures = []
            for event in events:
                message = kafka_message(event)
                futures.append(producer.send(self.topic, key=message.key.encode(), value=message.value,
                                             headers=list(message.headers.items())))
            for future in futures:
                future.get(timeout=SEND_TIMEOUT_SECONDS)
        except Exception:
            self._discard()
            raise

    def _ready(self) -> KafkaProducer:
        """The producer, created (topic checked first) on first use and again after a failure."""
        if self._producer is None:
            timeout_ms = int(SEND_TIMEOUT_SECONDS * 1000)
            ensure_topic(self.kafka, timeout_ms, self.topic)
            self._producer = KafkaProducer(
                **client_options(self.kafka, "catalog-events"),
                acks="all",
                enable_idempotence=True,  # retries can neither duplicate nor reorder a repository's events
                allow_auto_create_topics=False,
                bootstrap_timeout_ms=timeout_ms,
                max_block_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
            )
        return self._producer

    def _discard(self) -> None:
        """Drop a producer that failed: the next batch starts over with a fresh one and checks the topic again."""
        producer, self._producer = self._producer, None
        if producer is not None:
            threading.Thread(target=producer.close, kwargs={"timeout": 1}, name="catalog-topic-close",
                             daemon=True).start()

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=5)
