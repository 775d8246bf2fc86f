"""Events out give way to indexing: while more than BACKLOG events wait on the PostgreSQL queue, the dispatcher
fans out one event and a deliverer sends one run of deliveries per PAUSE_SECONDS (about 10 events and 200
deliveries a second), then both go at full speed again once the backlog is down.

Lowering a deliverer's CPU priority (nice 10) was not enough: each delivery also costs PostgreSQL its row and its
outcome, and the receiver its request, at their own priorities, and on two shared cores a fan-out of 500 pushes to
100 subscribers took a third of the indexing rate (bench/events.py). Deliveries still flow during a long burst,
only slower, so none waits for the burst to end. On Kafka the backlog is the consumer group's lag, which the events
out cannot see: there, deliverers run on machines of their own.
"""

from __future__ import annotations

from ocicat.db import Database

from ..bus import queue_table

BACKLOG = 10
PAUSE_SECONDS = 0.1


def indexing_busy(db: Database) -> bool:
    with db.transaction() as cur:
        return queue_table.backlog(cur, BACKLOG)
