"""What the bus is: how an event travels from the receiver to a worker, whichever bus carries it.

The receiver publishes (ocicat.events.Publisher); a worker consumes, handing
each event to a :class:`Handler` in two steps, and the bus settles the
outcome (settle.py) in the transaction of the second step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from ocicat.events import Publisher


class Handler(Protocol):
    """What a worker does with one event.

    ``prepare`` runs outside any transaction: fetching from the registry (a
    chart layer can be 100 MiB and take minutes) holds no pooled connection
    and no lock. ``apply`` runs in the transaction that also settles the
    event on the bus, so the catalog change and the event's removal commit
    together. Either may raise: ``TransientError`` to retry later, ``Busy``
    to wait a moment without spending an attempt, anything else to park the
    event as a dead letter.

    A transaction may settle several events (the PostgreSQL queue claims up to
    a handful of one repository's together): ``apply`` leaves in ``later``
    what is to be done once for all of them, and ``finish`` does it before the
    transaction commits (the repository's figures and search document,
    refreshed once, not once per event).
    """

    def prepare(self, payload: object) -> object:
        ...

    def apply(self, cur, prepared: object, later: list) -> None:
        ...

    def finish(self, cur, later: list) -> None:
        ...


@dataclass(frozen=True)
class Delivery:
    """One event as a bus hands it over: from a queue row, or from a Kafka message."""

    event_id: str | None
    repository: str | None
    payload: object
    attempts: int = 0  # failed attempts so far


class Bus(Publisher, Protocol):
    """The PostgreSQL queue (postgres.py) and Kafka (kafka.py) both are one."""

    def consume(self, handler: Handler, stop: threading.Event, concurrency: int = 1) -> None:
        """Hand events to ``handler`` until ``stop`` is set, finishing the ones in hand."""
