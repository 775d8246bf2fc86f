"""Worker failure handling: retry with backoff, dead letters, replay, recorded chart errors."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from psycopg2.extras import Json

from harness.events import fresh_push_event
from harness.faults import FaultyProxy
from harness.oci import push_blob, push_image, push_manifest
from harness.processes import OCICAT, REPO_ROOT, free_port, python_env, wait_until
from indexer.bus import PostgresQueue, postgres, queue_table
from indexer.indexing import EventIndexer
from indexer.registry import RegistryClient
from ocicat.db import connect
from ocicat.events import DeadLetter, Event

from .handlers import Step
from .probes import dead_letters, make_due, queue_rows, tag_digest


def _enqueue(queue, *events):
    queue.publish([Event.load(e) for e in events], [])


def test_unreachable_registry_is_retried_with_backoff_then_indexed(db, registry):
    digest = push_image(registry.url, "retry/app", "v1")
    queue = PostgresQueue(db, max_attempts=5)
    _enqueue(queue, fresh_push_event("retry/app", digest, "v1"))

    down = EventIndexer(db, RegistryClient(f"http://127.0.0.1:{free_port()}"))
    assert queue.process_one(down)
    [row] = queue_rows(db)
    assert row["attempts"] == 1 and row["delayed"] and "transient" in row["last_error"]
    assert not queue.process_one(down)  # not due yet
    assert dead_letters(db) == []

    make_due(db)
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    assert queue_rows(db) == []
    assert tag_digest(db, "retry/app", "v1") == digest


def test_exhausted_retries_dead_letter_and_cli_replays_them(db, registry, database_url):
    digest = push_image(registry.url, "replay/app", "v1")
    queue = PostgresQueue(db, max_attempts=2)
    event = fresh_push_event("replay/app", digest, "v1")
    _enqueue(queue, event)
    down = EventIndexer(db, RegistryClient(f"http://127.0.0.1:{free_port()}"))
    for _ in range(2):
        make_due(db)
        assert queue.process_one(down)
    assert queue_rows(db) == []
    [letter] = dead_letters(db)
    assert letter["event_id"] == event["id"] and letter["stage"] == "worker" and letter["attempts"] == 2
    assert "gave up after 2 attempts" in letter["reason"]

    env = python_env(OCICAT_DATABASE_URL=database_url)
    listed = subprocess.run([*OCICAT, "dlq", "list"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert event["id"] in listed.stdout and "replay/app" in listed.stdout
    as_json = subprocess.run([*OCICAT, "dlq", "list", "--json"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=60)
    assert json.loads(as_json.stdout.splitlines()[0])["payload"] == Event.load(event).payload()  # as the bus keeps it

    replayed = subprocess.run([*OCICAT, "dlq", "replay", "--all"], env=env, cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=60)
    assert replayed.returncode == 0 and "replayed 1 event(s)" in replayed.stdout
    assert dead_letters(db)[0]["replayed_at"] is not None
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    assert tag_digest(db, "replay/app", "v1") == digest

    listed = subprocess.run([*OCICAT, "dlq", "list"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert listed.stdout == ""  # replayed letters are hidden unless --all


def test_replay_leaves_still_malformed_letters_parked(db, database_url):
    queue = PostgresQueue(db)
    queue.publish([], [DeadLetter(payload={"id": "bad", "action": "push"}, reason="invalid", stage="receiver",
                                  event_id="bad")])
    env = python_env(OCICAT_DATABASE_URL=database_url)
    result = subprocess.run([*OCICAT, "dlq", "replay", "--all"], env=env, cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "still invalid" in result.stderr and "target" in result.stderr
    assert dead_letters(db)[0]["replayed_at"] is None and queue_rows(db) == []


def test_a_repositorys_events_are_claimed_together_and_its_figures_refreshed_for_all_of_them(db, registry):
    """Up to postgres.BATCH events of the oldest event's repository in one claim and one transaction; the events of
    another repository wait for a claim of their own."""
    queue = PostgresQueue(db)
    events = [fresh_push_event("batch/app", push_image(registry.url, "batch/app", f"v{n}"), f"v{n}")
              for n in range(postgres.BATCH + 2)]
    other = fresh_push_event("batch/other", push_image(registry.url, "batch/other", "v1"), "v1")
    _enqueue(queue, events[0], other, *events[1:])
    indexer = EventIndexer(db, RegistryClient(registry.url))
    assert queue.process_one(indexer)
    assert len(queue_rows(db)) == 3  # the other repository's event and the two past the batch
    with db.transaction() as cur:
        cur.execute("SELECT tag_count, manifest_count, updated_at FROM repositories WHERE name = 'batch/app'")
        figures = cur.fetchone()
    assert (figures["tag_count"], figures["manifest_count"]) == (postgres.BATCH, postgres.BATCH)
    assert figures["updated_at"] == Event.load(events[postgres.BATCH - 1]).timestamp  # the newest event's time
    while queue.process_one(indexer):
        pass
    assert tag_digest(db, "batch/other", "v1") and tag_digest(db, "batch/app", f"v{postgres.BATCH + 1}")


def test_a_finishing_step_that_fails_settles_every_event_of_the_batch_as_failed(db):
    """A failure after the events were applied (the repository's refresh) takes them all back and counts an attempt
    for each, so they are retried and then parked: never the same batch again and again for nothing."""
    queue = PostgresQueue(db, max_attempts=2)
    events = [fresh_push_event("finish/app", f"sha256:{n:064x}", f"v{n}") for n in range(3)]
    _enqueue(queue, *events)
    applied = []

    def refresh_fails(cur):  # a statement timeout, the transient failure a refresh could meet
        cur.execute("SET LOCAL statement_timeout = 1")
        cur.execute("SELECT pg_sleep(0.05)")

    handler = Step(lambda cur, payload: applied.append(payload["id"]), refresh_fails)
    assert queue.process_one(handler)
    assert sorted(row["attempts"] for row in queue_rows(db)) == [1, 1, 1] and dead_letters(db) == []
    make_due(db)
    assert queue.process_one(handler)
    assert queue_rows(db) == []
    assert sorted(letter["event_id"] for letter in dead_letters(db)) == sorted(e["id"] for e in events)
    assert all("statement timeout" in letter["reason"] for letter in dead_letters(db))
    assert len(applied) == 6  # applied each time, taken back each time


def test_invalid_queued_payload_is_dead_lettered_and_the_next_event_indexed(db, registry):
    digest = push_image(registry.url, "poison/app", "v1")
    queue = PostgresQueue(db)
    with db.transaction() as cur:  # as if a bad row got onto the bus some other way
        cur.execute("INSERT INTO event_queue (event_id, repository, payload) VALUES ('poison', 'poison/app', %s)",
                    (Json({"id": "poison", "action": "push", "target": {}}),))
    _enqueue(queue, fresh_push_event("poison/app", digest, "v1"))
    indexer = EventIndexer(db, RegistryClient(registry.url))
    # One repository's events are claimed and settled together, each on its own: the bad one parked, the next applied
    assert queue.process_one(indexer) and not queue.process_one(indexer)
    [letter] = dead_letters(db)
    assert letter["event_id"] == "poison" and "ValidationError" in letter["reason"]
    assert tag_digest(db, "poison/app", "v1") == digest


def test_a_bad_chart_config_is_a_recorded_error_not_a_failure(db, registry):
    repository = "broken/chart"
    config = b"this is not json {"
    layer = b"not really a chart"
    manifest = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json",
                   "digest": push_blob(registry.url, repository, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "digest": push_blob(registry.url, repository, layer), "size": len(layer)}],
    }
    digest = push_manifest(registry.url, repository, "0.1.0", manifest, "application/vnd.oci.image.manifest.v1+json")
    queue = PostgresQueue(db)
    _enqueue(queue, fresh_push_event(repository, digest, "0.1.0"))
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    with db.transaction() as cur:
        cur.execute("SELECT kind, error, (SELECT count(*) FROM helm_charts) AS charts FROM manifests")
        row = cur.fetchone()
    assert row["kind"] == "helm-chart" and "not JSON" in row["error"] and row["charts"] == 0
    assert tag_digest(db, repository, "0.1.0") == digest and dead_letters(db) == []


def test_push_of_a_manifest_the_registry_no_longer_has_indexes_nothing(db, registry):
    queue = PostgresQueue(db)
    _enqueue(queue, fresh_push_event("gone/app", "sha256:" + "0" * 64, "v1"))
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    assert queue_rows(db) == [] and dead_letters(db) == []
    assert tag_digest(db, "gone/app", "v1") is None


def test_a_database_error_on_a_live_connection_is_retried_not_parked(db):
    """Statement timeouts and deadlocks abort the event's writes but not the queue's bookkeeping."""
    queue = PostgresQueue(db, max_attempts=5)
    _enqueue(queue, fresh_push_event("slow/app", "sha256:" + "1" * 64))

    def times_out(cur, raw):
        cur.execute("SET LOCAL statement_timeout = 10")
        cur.execute("SELECT pg_sleep(1)")

    assert queue.process_one(Step(times_out))
    [row] = queue_rows(db)
    assert row["attempts"] == 1 and "statement timeout" in row["last_error"]
    assert dead_letters(db) == []


def test_nul_characters_in_a_manifest_are_stored_replaced(db, registry):
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(registry.url, "nul/app", config), "size": len(config)},
        "layers": [],
        "annotations": {"org.opencontainers.image.title": "a\u0000b", "k\u0000": "v"},
    }
    digest = push_manifest(registry.url, "nul/app", "v1", manifest, manifest["mediaType"])
    queue = PostgresQueue(db)
    _enqueue(queue, fresh_push_event("nul/app", digest, "v1"))
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    assert dead_letters(db) == []
    with db.transaction() as cur:
        cur.execute("SELECT annotations FROM manifests")
        assert cur.fetchone()["annotations"] == {"org.opencontainers.image.title": "a\ufffdb", "k\ufffd": "v"}


def test_an_event_whose_repository_is_busy_waits_without_spending_an_attempt(db, registry, database_url):
    digest = push_image(registry.url, "busy/app", "v1")
    queue = PostgresQueue(db)
    _enqueue(queue, fresh_push_event("busy/app", digest, "v1"))
    other = connect(database_url)  # another worker, in the middle of an event for busy/app
    other.cursor().execute("SELECT pg_advisory_lock(hashtextextended('busy/app', 0))")
    try:
        assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
        [row] = queue_rows(db)
        assert row["attempts"] == 0 and row["delayed"]
    finally:
        # Unlocked before closing: a closed session's locks are released by its backend a moment later,
        # which a loaded machine made this test lose the race to.
        other.cursor().execute("SELECT pg_advisory_unlock(hashtextextended('busy/app', 0))")
        other.close()
    make_due(db)
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    assert tag_digest(db, "busy/app", "v1") == digest


def test_claimer_threads_outlive_unexpected_database_errors(db, registry, caplog):
    digest = push_image(registry.url, "survive/app", "v1")
    queue = PostgresQueue(db)
    stop = threading.Event()
    with db.transaction() as cur:
        cur.execute("ALTER TABLE event_queue RENAME TO event_queue_away")  # every claim now fails
    consumer = threading.Thread(target=queue.consume, args=(EventIndexer(db, RegistryClient(registry.url)), stop, 2))
    consumer.start()
    try:
        wait_until(lambda: sum("claiming failed" in r.getMessage() for r in caplog.records) >= 2,
                   what="both claimers to fail")
        with db.transaction() as cur:
            cur.execute("ALTER TABLE event_queue_away RENAME TO event_queue")
        _enqueue(queue, fresh_push_event("survive/app", digest, "v1"))
        wait_until(lambda: tag_digest(db, "survive/app", "v1") == digest, timeout=60, what="claimers to recover")
    finally:
        stop.set()
        consumer.join(15)
    assert not consumer.is_alive()


def test_a_manifest_whose_digest_does_not_match_is_parked_with_the_reason(db, registry):
    """A registry (or something between) serving other bytes than the digest names: refused, and the worker goes on."""
    import http.server

    forged = b'{"schemaVersion": 2, "layers": []}'

    class Forger(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(len(forged)))
            self.end_headers()
            self.wfile.write(forged)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        queue = PostgresQueue(db)
        _enqueue(queue, fresh_push_event("forged/app", "sha256:" + "2" * 64, "v1"))
        assert queue.process_one(EventIndexer(db, RegistryClient(f"http://127.0.0.1:{server.server_address[1]}")))
    finally:
        server.shutdown()
    [letter] = dead_letters(db)
    assert "digest mismatch" in letter["reason"] and letter["stage"] == "worker"

    digest = push_image(registry.url, "forged/next", "v1")
    _enqueue(queue, fresh_push_event("forged/next", digest, "v1"))
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    assert tag_digest(db, "forged/next", "v1") == digest


def _open_transactions(db) -> int:
    """Client sessions on the test's database with a transaction open, other than the one asking."""
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                    " AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL")
        return cur.fetchone()["n"]


def test_the_event_path_fetches_with_no_transaction_open_and_the_event_leased(db, registry):
    """A fetch that takes seconds (every registry request stalls 1.5 s here) holds no database connection, no
    transaction and no lock on the queue row; the row is leased instead, so no other worker takes the event."""
    digest = push_image(registry.url, "slow/app", "v1")
    queue = PostgresQueue(db)
    _enqueue(queue, fresh_push_event("slow/app", digest, "v1"))
    proxy = FaultyProxy(registry.url, fault_rate=1.0, stall_seconds=1.5, kinds=("stall",))
    worker = threading.Thread(target=queue.process_one, args=(EventIndexer(db, RegistryClient(proxy.url)),))
    try:
        worker.start()
        wait_until(lambda: proxy.counts["stall"] >= 1, timeout=60, what="the worker's first (stalled) fetch")
        assert _open_transactions(db) == 0
        with db.transaction() as cur:
            cur.execute("SELECT event_id FROM event_queue FOR UPDATE NOWAIT")  # no lock held: this would fail
            assert len(cur.fetchall()) == 1
        counted = []
        assert not PostgresQueue(db).process_one(Step(lambda cur, raw: counted.append(raw)))  # leased, not due
        worker.join(30)
    finally:
        proxy.close()
    assert not worker.is_alive() and not counted
    assert tag_digest(db, "slow/app", "v1") == digest and queue_rows(db) == []


def test_a_lease_is_renewed_while_its_worker_works_and_runs_out_when_the_worker_is_gone(db, registry, monkeypatch):
    monkeypatch.setattr(queue_table, "LEASE_SECONDS", 3.0)  # the listener renews at most once a second (its wait)
    monkeypatch.setattr(postgres, "RENEW_EVERY_SECONDS", 0.2)
    digest = push_image(registry.url, "lease/app", "v1")
    queue = PostgresQueue(db)
    _enqueue(queue, fresh_push_event("lease/app", digest, "v1"))
    proxy = FaultyProxy(registry.url, fault_rate=1.0, stall_seconds=2.5, kinds=("stall",))
    stop = threading.Event()
    worker = threading.Thread(target=queue.consume, args=(EventIndexer(db, RegistryClient(proxy.url)), stop, 1))
    counted = []
    other = Step(lambda cur, raw: counted.append(raw))
    try:
        worker.start()
        wait_until(lambda: proxy.counts["stall"] >= 1, timeout=60, what="the worker's first (stalled) fetch")
        # Two stalled fetches (manifest, config) take 5 s, more than a lease: renewed, the event stays the worker's.
        deadline = time.monotonic() + 30
        while tag_digest(db, "lease/app", "v1") is None:
            assert not PostgresQueue(db).process_one(other)
            assert time.monotonic() < deadline, "the worker never indexed the event"
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)
        proxy.close()
    assert not counted and queue_rows(db) == []

    # A worker that died after leasing (its lease taken, never renewed): the event is due again a lease later.
    _enqueue(queue, fresh_push_event("lease/app", digest, "v2"))
    with db.transaction() as cur:
        assert queue_table.claim(cur, 1)
    assert not queue.process_one(other)
    wait_until(lambda: queue.process_one(EventIndexer(db, RegistryClient(registry.url))), timeout=60,
               what="the lease to run out")
    assert tag_digest(db, "lease/app", "v2") == digest


def test_the_dead_letter_listing_shows_control_characters_as_escapes(db, database_url):
    """Parked events are whatever was sent: an id of ESC ] 0 ; ... BEL retitled the operator's terminal."""
    PostgresQueue(db).publish([], [DeadLetter(payload={"id": "\x1b]0;PWNED\x07"}, reason="invalid event: \u202eoops",
                                              stage="receiver", event_id="\x1b]0;PWNED\x07", repository="a/\x1b[2Jb")])
    listed = subprocess.run([*OCICAT, "dlq", "list"], env=python_env(OCICAT_DATABASE_URL=database_url), cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout and "\u202e" not in listed.stdout
    assert "\\x1b]0;PWNED\\x07" in listed.stdout and "a/\\x1b[2Jb" in listed.stdout and "\\u202eoops" in listed.stdout
