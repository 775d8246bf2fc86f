"""The scale-out bus: a Kafka topic between the receivers and a consumer group of workers.

Chosen with ``OCICAT_KAFKA_BOOTSTRAP``; the PostgreSQL queue stays the
default. Receivers produce (kafka_producer.py); workers consume in a group
(kafka_consumer.py). Dead letters, delayed retries and dedupe stay in
PostgreSQL, next to the catalog: a worker moves a failing message off its
partition into the queue table (settle.py) and drains that table too, so
``ocicat dlq replay`` works the same on both buses.
"""

from __future__ import annotations

import threading

from ocicat.config import KafkaConfig
from ocicat.db import Database

from .kafka_consumer import GroupMember
from .kafka_producer import KafkaPublisher
from .postgres import PostgresQueue
from .protocol import Handler


class KafkaBus(KafkaPublisher):
    """The Bus on Kafka: publish from receivers, consume in a consumer group of workers."""

    def __init__(self, db: Database, kafka: KafkaConfig, max_attempts: int):
        super().__init__(db, kafka)
        self.max_attempts = max_attempts

    def consume(self, handler: Handler, stop: threading.Event, concurrency: int = 1) -> None:
        """Index this worker's share of the partitions, and the delayed retries, until ``stop`` is set."""
        retries = PostgresQueue(self.db, self.max_attempts)
        drain = threading.Thread(target=retries.consume, args=(handler, stop, concurrency), name="retry-queue",
                                 daemon=True)
        drain.start()
        try:
            GroupMember(self.kafka, self.db, handler, stop, concurrency, self.max_attempts).run()
        finally:
            stop.set()  # if the member failed, the retry drain stops too and the worker exits
            drain.join()
