"""The bus between the receiver and the workers: the PostgreSQL queue by default, Kafka to scale out.

Imports point inward: ``protocol`` (what a bus is) <- ``dedupe``,
``queue_table``, ``dead_letters`` (the bus's tables) <- ``settle`` (one
event's outcome) <- ``postgres``, ``kafka_*`` (the two buses) <- this
package's :func:`open_bus`, the one factory.
"""

from __future__ import annotations

from ocicat.config import Config
from ocicat.db import Database

from .postgres import PostgresQueue
from .protocol import Bus


def open_bus(config: Config, db: Database) -> Bus:
    """The bus the configuration asks for: Kafka with OCICAT_KAFKA_BOOTSTRAP, else the PostgreSQL queue."""
    if config.kafka is None:
        return PostgresQueue(db, config.max_attempts)
    from .kafka import KafkaBus  # kafka-python is loaded only where Kafka is configured

    return KafkaBus(db, config.kafka, config.max_attempts)


def describe_bus(config: Config) -> str:
    """The bus in a few words, for start-up log lines."""
    if config.kafka is None:
        return "PostgreSQL queue"
    kafka = config.kafka
    return f"Kafka {','.join(kafka.bootstrap)} topic {kafka.topic} group {kafka.group}"
