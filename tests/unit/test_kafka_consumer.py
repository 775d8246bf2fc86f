"""The Kafka consumer's pure pieces: lag, and messages that are not events."""

from __future__ import annotations

from kafka import TopicPartition

from indexer.bus.kafka_consumer import lag, message_delivery


def test_lag_is_end_minus_progress_and_never_negative():
    a, b, c = (TopicPartition("t", i) for i in range(3))
    assert lag({a: 10, b: 5, c: None}, {a: 4, b: 7}) == {a: 6, b: 0}
    assert lag({a: 3}, {}) == {a: 3}


def test_a_message_that_is_not_an_event_is_delivered_as_text_to_be_parked():
    class Record:
        value = b"\xff not json"

    delivery = message_delivery(Record())
    assert delivery.payload == "\ufffd not json" and delivery.event_id is None and delivery.repository is None
    Record.value = b'{"id": "e1", "target": {"repository": "a/b"}}'
    assert (message_delivery(Record()).event_id, message_delivery(Record()).repository) == ("e1", "a/b")
