"""What every Kafka client of ocicat's shares (producer, consumer, admin): where, who, how securely, and the topic."""

from __future__ import annotations

import logging
import os
import socket

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from ocicat.config import KafkaConfig

log = logging.getLogger(__name__)
# kafka-python logs every connection at INFO and every failed reconnect at ERROR (dozens a second while
# a broker is down); ocicat's own lines say what matters (broker unreachable, 503s, commits failing, lag),
# and OCICAT_LOG_LEVEL=DEBUG brings kafka-python's back.
if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

RECONNECT_BACKOFF_MAX_MS = 1_000  # a broker that comes back is found within a second


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


def ensure_topic(kafka: KafkaConfig, timeout_ms: int, topic: str | None = None) -> int:
    """Create the topic (the bus's, or ``topic``) unless it exists; its partition count.

    Brokers that auto-create topics would do it with their own default
    partition count, so every ocicat client calls this before it touches
    the topic. An existing topic is never changed: adding partitions moves
    repositories to other partitions, which is the operator's call.
    """
    topic = topic or kafka.topic
    admin = KafkaAdminClient(**client_options(kafka, "admin"), bootstrap_timeout_ms=timeout_ms,
                             request_timeout_ms=timeout_ms)
    try:
        try:
            admin.create_topics(
                {topic: {"num_partitions": kafka.partitions, "replication_factor": kafka.replication_factor}},
                timeout_ms=timeout_ms, wait_for_metadata=True,
            )
            log.info("created Kafka topic %s: %d partitions, replication factor %d",
                     topic, kafka.partitions, kafka.replication_factor)
            return kafka.partitions
        except TopicAlreadyExistsError:
            [described] = admin.describe_topics([topic])
            count = len(described["partitions"])
            if count != kafka.partitions:
                log.info("Kafka topic %s exists with %d partitions (OCICAT_KAFKA_PARTITIONS=%d applies only when "
                         "ocicat creates it)", topic, count, kafka.partitions)
            return count
    finally:
        admin.close()
