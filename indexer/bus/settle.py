"""One event through a handler, and its outcome settled in the same transaction: applied, retried later, or parked.

Both buses use this. Once the transaction commits, the event is either done
or safely elsewhere (a delayed retry on the queue table, or a dead letter),
so the bus can let it go (delete its queue row, commit its Kafka offset)
without ever blocking on a failing event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg2
from marshmallow import ValidationError

from ocicat.errors import Busy, PermanentError, TransientError, backoff_seconds
from ocicat.events import DeadLetter
from ocicat.logs import log_context

from . import dead_letters, dedupe, queue_table
from .protocol import Delivery, Handler

log = logging.getLogger(__name__)

BUSY_DELAY_SECONDS = 0.05  # an event whose repository another worker holds waits this long, attempts untouched


@dataclass(frozen=True)
class Prepared:
    """What a handler's first step gave: its result, or the failure to settle in the second step."""

    value: object = None
    error: Exception | None = None


def prepare(handler: Handler, delivery: Delivery) -> Prepared:
    """The handler's first step, outside any transaction."""
    with log_context(event_id=delivery.event_id, repository=delivery.repository):
        try:
            return Prepared(handler.prepare(delivery.payload))
        except Exception as exc:  # noqa: BLE001 - settled in the transaction that follows
            return Prepared(error=exc)


def settle_all(cur, handler: Handler, work: list[tuple[Delivery, Prepared]], max_attempts: int) -> list[Delivery]:
    """Settle a transaction's events, each on its own, then the handler's ``finish`` once for them all; the events
    applied. Should ``finish`` fail, none is: each is settled with its failure instead (retried with an attempt
    counted, or parked once its attempts run out), so a failure there cannot bring the same events back forever."""
    cur.execute("SAVEPOINT settle_all")
    try:
        later = []
        applied = [delivery for delivery, prepared in work
                   if settle(cur, handler, delivery, prepared, max_attempts, later)]
        handler.finish(cur, later)
        return applied
    except Exception as exc:  # noqa: BLE001 - settled below, as a failure of every event in hand
        if cur.connection.closed:
            raise  # the connection is gone; the caller retries the whole transaction
        cur.execute("ROLLBACK TO SAVEPOINT settle_all")
        log.warning("finishing %d event(s) failed: %s", len(work), exc, exc_info=not _expected(exc))
        for delivery, _ in work:
            settle(cur, handler, delivery, Prepared(error=exc), max_attempts, [])
        return []


def settle(cur, handler: Handler, delivery: Delivery, prepared: Prepared, max_attempts: int, later: list) -> bool:
    """The handler's second step in the caller's transaction, once per event id; True if it succeeded. What it
    leaves in ``later`` the caller hands to the handler's ``finish`` once the transaction's events are settled.

    A failure of either step is settled here: the event is put (back) on the
    queue table for later, with an attempt counted unless it was only Busy,
    or parked as a dead letter. Raises only if the database itself failed,
    and then nothing was settled.
    """
    with log_context(event_id=delivery.event_id, repository=delivery.repository):
        cur.execute("SAVEPOINT handle")
        try:
            if prepared.error is not None:
                raise prepared.error
            if delivery.event_id is None or dedupe.first_time(cur, delivery.event_id):
                handler.apply(cur, prepared.value, later)
            else:
                log.debug("event %s already processed", delivery.event_id)
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
    queue_table.enqueue(cur, [(delivery.event_id, delivery.repository, delivery.payload)], attempts=attempts,
                        delay=seconds, error=reason, retry=True)


def _park(cur, delivery: Delivery, reason: str, attempts: int) -> None:
    dead_letters.park(cur, [DeadLetter(payload=delivery.payload, reason=reason, stage="worker",
                                       event_id=delivery.event_id, repository=delivery.repository,
                                       attempts=attempts)])
    if delivery.event_id is not None:
        queue_table.remove(cur, [delivery.event_id])


def _expected(exc: Exception) -> bool:
    """Failures the pipeline anticipates; anything else is logged with a traceback."""
    return isinstance(exc, (PermanentError, ValidationError))
