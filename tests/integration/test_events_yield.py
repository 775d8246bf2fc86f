"""Events out give way to indexing (indexer.delivery.yielding): while events wait on the PostgreSQL queue, the
dispatcher hands out one catalog event per pause instead of all of them, and goes at full speed once the backlog is
down. Against a real PostgreSQL, with a real dispatcher thread."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from harness.processes import wait_until
from indexer.bus import queue_table
from indexer.delivery import yielding
from indexer.delivery.dispatch import Dispatcher
from ocicat.catalog import outbox


def _undispatched(db) -> int:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM catalog_events WHERE dispatched_at IS NULL")
        return cur.fetchone()["n"]


def test_the_backlog_is_more_than_its_bound_of_queued_events(db):
    def busy():
        with db.transaction() as cur:
            return queue_table.backlog(cur, yielding.BACKLOG)

    with db.transaction() as cur:
        queue_table.enqueue(cur, [(f"e{n}", "team/app", {}) for n in range(yielding.BACKLOG)])
    assert not busy()
    with db.transaction() as cur:
        queue_table.enqueue(cur, [("one-more", "team/app", {})])
    assert busy()


def test_the_dispatcher_paces_itself_while_events_wait_to_be_indexed(db):
    with db.transaction() as cur:
        queue_table.enqueue(cur, [(f"e{n}", "team/app", {}) for n in range(yielding.BACKLOG + 1)])
        for n in range(30):
            outbox.record(cur, "image.published", "team/app", datetime.now(timezone.utc), crawl=False, tag=f"t{n}",
                          digest="sha256:" + f"{n:064x}", kind="image")
    stop = threading.Event()
    dispatcher = Dispatcher(db, "http://ocicat.test", None, retention_days=7, yield_to_indexing=True)
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: _undispatched(db) < 30, timeout=30, what="the first event dispatched")
        time.sleep(10 * yielding.PAUSE_SECONDS)
        # one event a pause: at most ~11 in that time, against all 30 in one batch without a backlog
        assert 30 - _undispatched(db) <= 15
        with db.transaction() as cur:
            cur.execute("DELETE FROM event_queue")  # the workers caught up
        wait_until(lambda: _undispatched(db) == 0, timeout=10, what="the rest dispatched at full speed")
    finally:
        stop.set()
        thread.join(10)
