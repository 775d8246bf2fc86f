"""Fault injection against real processes: nothing lost, nothing extra, nothing twice.

A real registry (Debian's docker-registry) notifies a real `ocicat api`; `ocicat worker` fetches through a proxy
that fails a fifth of the requests (503s, stalls, connections cut mid-body) and is killed with SIGKILL every
couple of seconds. Crashes, not restarts: the API (gunicorn and its workers) is SIGKILLed while the registry
delivers, and later PostgreSQL (a server of the test's own, fsync on as in production): its postmaster and every
backend SIGKILLed, the receiver asked to store an envelope meanwhile (it must answer 503, so the registry
retries), then the server recovers from its WAL. At the end the catalog must equal the registry's own state, as a
crawl of the registry shows it, the catalog events recorded on the way, replayed, must give that catalog, and a
webhook subscriber to every event must have received each of them, exactly once after deduping by webhook-id.

Scale: OPERATIONS (2,000 pushes and deletes by PUSHERS clients at once, over 8 repositories with 5 tags each,
so tags keep moving): about a minute of pushing on this 2-core machine, with some 20 worker kills, and as long
again for the last worker to drain what the killed ones left.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.events import envelope, fresh_push_event
from harness.faults import FaultyProxy
from harness.oci import push_image
from harness.postgres import PostgresServer
from harness.processes import OCICAT, REPO_ROOT, Ocicat, free_port, python_env, wait_http, wait_until
from harness.registry import Registry
from harness.webhooks import Receiver
from indexer.bus import PostgresQueue
from ocicat import accounts, subscriptions
from ocicat.db import Database
from ocicat.events import Event

from .probes import (
    catalog_events,
    catalog_manifests,
    catalog_tags,
    dead_letters,
    queue_rows,
    registry_manifests,
    registry_tags,
    replay_events,
    tag_digest,
)

OPERATIONS = 2000
PUSHERS = 4  # each owns REPOSITORIES / PUSHERS repositories, so it knows what it left there
REPOSITORIES = 8
TAGS = 5
DELETE_SHARE = 0.2
KILL_EVERY = (1.5, 3.0)  # seconds a worker works (from its "worker started" line) before its SIGKILL


class Killer:
    """Keeps one `ocicat worker` running and kills it with SIGKILL at random intervals until stopped.

    A worker's time counts from its "worker started" line, not from its spawn: on a slow machine the interpreter's
    start alone can take longer than KILL_EVERY, and workers killed before they start fetch nothing.
    """

    def __init__(self, env: dict, log_dir, seed: int = 8):
        self.env, self.log_dir = env, log_dir
        self.rng = random.Random(seed)
        self.kills = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            worker = Ocicat("worker", self.env, self.log_dir / f"worker-{self.kills}.log").start()
            wait_until(lambda: self.stopping.is_set() or "worker started" in worker.output(), interval=0.05,
                       what="a worker to start")
            self.stopping.wait(self.rng.uniform(*KILL_EVERY))
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(10)
            self.kills += 1

    def start(self) -> "Killer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(30)


@pytest.fixture
def postgres():
    server = PostgresServer().start()
    yield server
    server.close()


def test_catalog_converges_through_worker_api_and_database_crashes_and_a_faulty_registry(postgres, tmp_path):
    url = postgres.create_database("ocicat")
    port = free_port()
    secret = "faults-" + uuid.uuid4().hex
    registry = Registry(notify_url=f"http://127.0.0.1:{port}/api/v1/events", secret=secret).start()
    proxy = FaultyProxy(registry.url)
    env = python_env(OCICAT_DATABASE_URL=url, OCICAT_LISTEN=f"127.0.0.1:{port}", OCICAT_REGISTRY_URL=proxy.url,
                     OCICAT_WEBHOOK_SECRETS=secret, OCICAT_API_WORKERS=1, OCICAT_MAX_ATTEMPTS=50,
                     OCICAT_WORKER_CONCURRENCY=4, OCICAT_DELIVERY_ALLOW="127.0.0.1",
                     OCICAT_DELIVERY_BACKOFF_SECONDS=0.5)
    subprocess.run([*OCICAT, "migrate"], env=env, cwd=REPO_ROOT, check=True, capture_output=True, timeout=60)
    api = Ocicat("api", env, tmp_path / "api.log").start()
    hook = Receiver()  # a subscriber to every catalog event, delivered by the workers that keep being killed
    setup = Database(url, maxconn=1)
    with setup.transaction() as cur:
        accounts.create_user(cur, "watcher", admin=True)
        subscriptions.create(cur, accounts.user_id(cur, "watcher"), "everything", hook.url, "cloudevents", {})
    setup.close()
    killer = None
    final = None
    db = None
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
        killer = Killer(env, tmp_path).start()
        done = [0]  # operations finished, by all pushers
        lock = threading.Lock()

        def push_and_delete(pusher: int) -> tuple[set, dict]:
            rng, http = random.Random(pusher), requests.Session()
            pushed: set[tuple[str, str]] = set()
            tagged: dict[tuple[str, str], str] = {}
            for n in range(OPERATIONS // PUSHERS):
                repository = f"faults/app-{pusher + PUSHERS * rng.randrange(REPOSITORIES // PUSHERS)}"
                if tagged and rng.random() < DELETE_SHARE:
                    (repository, tag), digest = rng.choice(sorted(tagged.items()))
                    assert http.delete(f"{registry.url}/v2/{repository}/manifests/{digest}", timeout=10).status_code == 202
                    tagged = {key: d for key, d in tagged.items() if d != digest}
                else:
                    tag = f"t{rng.randrange(TAGS)}"
                    digest = push_image(registry.url, repository, tag, seed=f"{pusher}-{n}", session=http)
                    pushed.add((repository, digest))
                    tagged[(repository, tag)] = digest
                with lock:
                    done[0] += 1
            return pushed, tagged

        with ThreadPoolExecutor(PUSHERS) as pool:
            results = [pool.submit(push_and_delete, pusher) for pusher in range(PUSHERS)]

            def reached(share: float) -> None:
                wait_until(lambda: done[0] >= OPERATIONS * share or all(r.done() for r in results), timeout=600,
                           interval=0.1, what=f"{share:.0%} of the operations")
                assert done[0] < OPERATIONS  # the crash falls in the middle of the stream

            reached(1 / 3)
            api.crash()  # the receiver dies mid-delivery: what it answered 200 for is stored, the rest is retried
            api = Ocicat("api", env, tmp_path / "api-2.log").start()
            wait_http(f"http://127.0.0.1:{port}/healthz")

            reached(2 / 3)
            postgres.crash()
            stranded = envelope(fresh_push_event("faults/app-0", "sha256:" + "e" * 64, "stranded"))
            answer = requests.post(f"http://127.0.0.1:{port}/api/v1/events", data=stranded, timeout=30,
                                   headers={"Authorization": f"Bearer {secret}"})
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "1", answer.text
            postgres.recover()
            pushed = set().union(*(r.result()[0] for r in results))
            tagged = {key: d for r in results for key, d in r.result()[1].items()}
        killer.stop()
        assert killer.kills >= 5
        assert proxy.counts["error"] and proxy.counts["stall"] and proxy.counts["cut"]

        final = Ocicat("worker", env, tmp_path / "worker-final.log").start()
        db = Database(url, maxconn=2)
        truth = registry_tags(registry.url)  # the registry itself, not through the proxy
        assert {(r, t): d for r, tags in truth.items() for t, d in tags.items()} == tagged  # the crawl sees it all
        wait_until(lambda: catalog_tags(db) == truth, timeout=420, interval=0.5, what="the catalog to converge")
        wait_until(lambda: not queue_rows(db), timeout=60, interval=0.5, what="the queue to drain")
        assert catalog_tags(db) == truth
        assert catalog_manifests(db) == registry_manifests(registry.url, pushed)
        assert dead_letters(db) == []
        # The outbox was written in the catalog's own transactions: replayed, its events give the same catalog
        # (no event without its change, no change without its event), none announced twice, and all went out.
        events = wait_until(lambda: (events := catalog_events(db)) and all(e["dispatched_at"] for e in events)
                            and events, timeout=60, interval=0.5, what="every catalog event dispatched")
        live, announced, twice = replay_events(events)
        assert live == truth and announced == catalog_manifests(db) and twice == []
        # Every event reached the subscriber; a delivery sent again after a kill carries the same webhook-id, so a
        # receiver deduping by it sees each event exactly once.
        wait_until(lambda: not _pending_deliveries(db), timeout=180, interval=0.5, what="every delivery made")
        by_message = {}
        for request in hook.requests():
            event_id = json.loads(request.body)["id"]
            assert by_message.setdefault(request.headers["webhook-id"], event_id) == event_id
        assert sorted(by_message.values()) == sorted(str(e["id"]) for e in events)
        with db.transaction() as cur:
            cur.execute("SELECT count(*) AS n, count(DISTINCT (repository_id, digest)) AS distinct_n FROM manifests")
            row = cur.fetchone()
            assert row["n"] == row["distinct_n"]
            cur.execute("SELECT count(*) AS n FROM repositories GROUP BY name HAVING count(*) > 1")
            assert cur.fetchall() == []
    finally:
        if killer is not None:
            killer.stop()
        if db is not None:
            db.close()
        for process in (final, api):
            if process is not None:
                process.stop()
        proxy.close()
        registry.close()
        hook.close()


def _pending_deliveries(db) -> int:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM deliveries WHERE state <> 'delivered'")
        return cur.fetchone()["n"]


def test_sigterm_lets_the_worker_finish_the_event_in_hand_on_the_postgresql_queue(make_database, tmp_path):
    """(The Kafka bus has its own: test_kafka's stopped-worker test.) Every registry request stalls 2 s, so the
    SIGTERM arrives while the event is being fetched; the worker must finish it, commit, and exit 0."""
    registry = Registry().start()
    proxy = FaultyProxy(registry.url, fault_rate=1.0, stall_seconds=2.0, kinds=("stall",))
    url = make_database()
    db = Database(url, maxconn=2)
    worker = None
    try:
        digest = push_image(registry.url, "drain/app", "v1")
        PostgresQueue(db).publish([Event.load(fresh_push_event("drain/app", digest, "v1"))], [])
        env = python_env(OCICAT_DATABASE_URL=url, OCICAT_REGISTRY_URL=proxy.url, OCICAT_WORKER_CONCURRENCY=1)
        worker = Ocicat("worker", env, tmp_path / "worker.log").start()
        wait_until(lambda: proxy.counts["stall"] >= 1, timeout=60, what="the worker's first (stalled) fetch")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(20) == 0, worker.output()
        assert tag_digest(db, "drain/app", "v1") == digest, worker.output()
        assert not queue_rows(db)
    finally:
        if worker is not None:
            worker.stop()
        db.close()
        proxy.close()
        registry.close()
