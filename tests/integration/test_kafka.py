"""The Kafka bus against real processes: a Kafka-protocol broker (tansu), a CNCF registry that notifies
`ocicat api`, and `ocicat worker` processes in one consumer group (its pure pieces: tests/unit)."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from cloudevents.core.bindings import kafka as cloudevents_kafka
from cloudevents.core.formats.json import JSONFormat
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from harness.events import envelope, fresh_push_event, push_event
from harness.kafka import KafkaBroker
from harness.oci import push_image
from harness.processes import OCICAT, REPO_ROOT, Ocicat, python_env, wait_until
from indexer.bus import kafka_consumer, settle
from indexer.bus.kafka import KafkaBus
from indexer.indexing import EventIndexer
from indexer.registry import RegistryClient
from ocicat.config import Config
from ocicat.db import Database, connect
from ocicat.errors import TransientError
from ocicat.events import Event

from .handlers import Step, index_now
from .probes import catalog_events, dead_letters, make_due, queue_rows, tag_digest
from .stack import Stack, start_stack, stop_stack

PARTITIONS = 6
CONCURRENCY = 2


# -- real processes ---------------------------------------------------------------


def test_a_bad_kafka_setting_stops_the_worker_with_the_reason():
    result = subprocess.run([*OCICAT, "worker"], env=python_env(OCICAT_KAFKA_BOOTSTRAP="kafka"), cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "OCICAT_KAFKA_BOOTSTRAP must be host:port" in result.stderr


@pytest.fixture
def broker(tmp_path):
    kafka = KafkaBroker(tmp_path).start()
    yield kafka
    kafka.close()


class Cluster:
    """`ocicat api` (the receiver) on the Kafka bus, a registry notifying it, and the workers a test starts."""

    def __init__(self, stack: Stack, broker: KafkaBroker, topic: str, group: str, logs: Path):
        self.stack, self.broker, self.topic, self.group, self.logs = stack, broker, topic, group, logs
        self.workers: list[Ocicat] = []

    def worker(self, name: str, **env) -> Ocicat:
        settings = {**self.stack.env, **{key: str(value) for key, value in env.items()}}
        worker = Ocicat("worker", settings, self.logs / f"worker-{name}.log").start()
        self.workers.append(worker)
        return worker

    def count(self, table: str) -> int:
        with self.stack.db.transaction() as cur:
            cur.execute(f"SELECT count(*) AS n FROM {table}")
            return cur.fetchone()["n"]

    def visible(self, pushed: dict) -> bool:
        """Whether every ``(repository, tag) -> digest`` is in the tags API."""
        by_repository: dict[str, dict] = {}
        for (repository, tag), digest in pushed.items():
            by_repository.setdefault(repository, {})[tag] = digest
        return all(tags.items() <= {name: t["digest"] for name, t in self.stack.tags(repository).items()}.items()
                   for repository, tags in by_repository.items())

    def committed(self) -> dict[int, int]:
        """The group's committed offsets by partition."""
        admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap)
        try:
            offsets = admin.list_group_offsets(self.group).get(self.group, {})
        finally:
            admin.close()
        return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def ends(self) -> dict[int, int]:
        """Each non-empty partition's end offset, as the broker tells it."""
        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
            return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items() if end}
        finally:
            consumer.close()


@pytest.fixture
def cluster(make_database, broker, tmp_path):
    run = uuid.uuid4().hex[:8]
    stack = start_stack(
        make_database, tmp_path, command="api",
        OCICAT_API_THREADS=2,  # few connections: the PostgreSQL server's are shared with other test runs
        OCICAT_DEFAULT_VISIBILITY="public", OCICAT_WORKER_CONCURRENCY=CONCURRENCY,
        OCICAT_KAFKA_BOOTSTRAP=broker.bootstrap, OCICAT_KAFKA_TOPIC=f"events-{run}",
        OCICAT_KAFKA_GROUP=f"indexers-{run}", OCICAT_KAFKA_PARTITIONS=PARTITIONS,
        OCICAT_KAFKA_CATALOG_TOPIC=f"catalog-{run}",
    )
    cluster = Cluster(stack, broker, f"events-{run}", f"indexers-{run}", tmp_path)
    yield cluster
    for worker in cluster.workers:
        worker.stop()
    stop_stack(stack)


def partition_of(repository: str) -> int:
    """The partition kafka-python's default partitioner sends a repository's events to."""
    return (murmur2(repository.encode()) & 0x7FFFFFFF) % PARTITIONS


def one_repository_per_partition(namespace: str) -> list[str]:
    found: dict[int, str] = {}
    for i in range(1000):
        found.setdefault(partition_of(f"{namespace}/app-{i}"), f"{namespace}/app-{i}")
        if len(found) == PARTITIONS:
            return [found[p] for p in range(PARTITIONS)]
    raise AssertionError("no repository name for some partition")


def assignments(worker: Ocicat) -> list[set[int]]:
    """Every assignment a worker logged, in order."""
    return [{int(p) for p in found.split(",") if p.strip()}
            for found in re.findall(r"kafka: assigned partitions \[([0-9, ]*)\]", worker.output())]


def wait_sharing(*workers: Ocicat, timeout: float = 120) -> None:
    """Wait until the workers' latest assignments split all partitions between them."""
    def shared():
        latest = [assignments(w)[-1] if assignments(w) else set() for w in workers]
        return all(latest) and sum(map(len, latest)) == PARTITIONS and set().union(*latest) == set(range(PARTITIONS))

    wait_until(shared, timeout, 0.2, f"{len(workers)} workers to share the partitions")


def _logged_at_all(worker: Ocicat, text: str) -> list[float]:
    """When the worker logged lines containing ``text``, in seconds (its log's own clock)."""
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*" + re.escape(text), worker.output(), re.M)
    return [datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() for stamp in stamps]


def _logged_at(worker: Ocicat, text: str) -> float:
    return _logged_at_all(worker, text)[-1]


def indexed(worker: Ocicat) -> list[tuple[str, str, str]]:
    """(event id, repository, tag) for every push the worker logged as indexed."""
    return re.findall(r"event (\S+): push (\S+) (\S+)", worker.output())


def test_two_workers_share_the_partitions_and_index_every_push_exactly_once(cluster):
    a, b = cluster.worker("a"), cluster.worker("b")
    wait_sharing(a, b)
    repositories = one_repository_per_partition(f"share-{uuid.uuid4().hex[:8]}")
    pushed = {(repository, f"v{i}"): push_image(cluster.stack.registry.url, repository, f"v{i}", seed=str(i))
              for i in range(4) for repository in repositories}

    wait_until(lambda: cluster.visible(pushed), 60, 0.2, "every push in the tags API")
    by_worker = {worker: indexed(worker) for worker in (a, b)}
    assert Counter((repository, tag) for lines in by_worker.values() for _, repository, tag in lines) == Counter(pushed.keys())
    for worker, lines in by_worker.items():
        assert lines, "both workers index"
        assert {partition_of(repository) for _, repository, _ in lines} <= assignments(worker)[-1]
    assert cluster.count("processed_events") == len(pushed)
    assert cluster.count("dead_letters") == 0 and cluster.count("event_queue") == 0
    wait_until(lambda: cluster.committed() == cluster.ends(), 60, 0.5, "every offset committed")
    # The periodic line, once the work is done: partitions owned, no lag left, throughput.
    for worker in (a, b):
        def caught_up():
            after_work = worker.output().rsplit(": push ", 1)[1]
            return re.search(rf"kafka: 3 of {PARTITIONS} partitions; lag 0 \(\d+:0 \d+:0 \d+:0\); "
                             r"[\d.]+ events/s over \d+ s", after_work)

        wait_until(caught_up, 60, 0.5, "the lag line after the work")


def _push_stream(cluster: Cluster, repositories: list[str], count: int, pushed: dict, pause: float = 0.05) -> threading.Thread:
    """Push ``count`` images round-robin over ``repositories`` in the background, recording them in ``pushed``."""
    def run():
        session = requests.Session()
        for i in range(count):
            repository = repositories[i % len(repositories)]
            tag = f"s{i:03d}"
            pushed[(repository, tag)] = push_image(cluster.stack.registry.url, repository, tag, seed=str(i),
                                                   session=session)
            time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_worker_killed_mid_stream_loses_nothing_and_duplicates_nothing(cluster):
    a, b = cluster.worker("a"), cluster.worker("b")
    wait_sharing(a, b)
    repositories = one_repository_per_partition(f"kill-{uuid.uuid4().hex[:8]}")
    pushed: dict = {}
    pusher = _push_stream(cluster, repositories, 60, pushed)
    wait_until(lambda: len(indexed(a)) >= 5, 60, 0.05, "worker a to be busy")
    assert pusher.is_alive(), "the stream must still be running when a dies"
    a.process.kill()  # SIGKILL: no revoke, no commit, no goodbye to the group
    a.process.wait(10)
    pusher.join(60)
    assert not pusher.is_alive() and len(pushed) == 60

    wait_until(lambda: assignments(b)[-1] == set(range(PARTITIONS)), 60, 0.2, "b to take over every partition")
    wait_until(lambda: cluster.visible(pushed), 60, 0.2, "every push in the tags API")
    assert cluster.count("processed_events") == 60  # one row per event: nothing lost, nothing extra
    assert cluster.count("dead_letters") == 0 and cluster.count("event_queue") == 0
    assert cluster.count("manifests") == 60 and cluster.count("tags") == 60
    # Redelivered messages that a had settled are skipped by event id: only the ones a was in the middle of
    # (rolled back by the kill, at most one per partition batch it was running) are indexed again by b.
    again = set(indexed(a)) & set(indexed(b))
    assert len(again) <= CONCURRENCY, again
    wait_until(lambda: cluster.committed() == cluster.ends(), 60, 0.5, "b to commit every offset")


def test_the_catalog_topic_carries_every_catalog_event_in_order_per_repository(cluster):
    """Two workers (each running a dispatcher, one of them working) and tags that keep moving; the worker holding
    the dispatcher's lock is SIGKILLed mid-stream, the other takes over. A consumer of the catalog topic sees every
    catalog event the outbox holds, as CloudEvents keyed by repository, in outbox order within each repository."""
    a, b = cluster.worker("a"), cluster.worker("b")
    wait_sharing(a, b)
    dispatching = wait_until(lambda: [w for w in (a, b) if "dispatching catalog events" in w.output()], 60, 0.2,
                             "a worker to take the dispatcher's lock")
    assert len(dispatching) == 1
    repositories = one_repository_per_partition(f"out-{uuid.uuid4().hex[:8]}")
    pushed: dict = {}
    moving = _push_stream(cluster, repositories, 40, pushed)
    wait_until(lambda: len(catalog_events(cluster.stack.db)) >= 10, 60, 0.05, "catalog events to flow")
    assert moving.is_alive(), "the stream must still be running when the dispatcher dies"
    dispatching[0].process.kill()
    dispatching[0].process.wait(10)
    survivor = b if dispatching[0] is a else a
    moving.join(60)
    for i, repository in enumerate(repositories):  # the stream's first tag in each repository moves: tag.moved
        pushed[(repository, f"s{i:03d}")] = push_image(cluster.stack.registry.url, repository, f"s{i:03d}",
                                                       seed=f"moved-{i}")
    wait_until(lambda: cluster.visible(pushed), 90, 0.2, "every push in the tags API")
    outbox = wait_until(lambda: (rows := catalog_events(cluster.stack.db)) and all(r["dispatched_at"] for r in rows)
                        and rows, 60, 0.2, "the survivor to dispatch every event")
    assert "dispatching catalog events" in survivor.output()
    assert {r["type"] for r in outbox} >= {"image.published", "tag.moved"}

    consumer = KafkaConsumer(cluster.stack.env["OCICAT_KAFKA_CATALOG_TOPIC"], bootstrap_servers=cluster.broker.bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000)
    seen: dict[str, list[int]] = {}
    try:
        for record in consumer:
            message = cloudevents_kafka.KafkaMessage(dict(record.headers), record.key, record.value)
            event = cloudevents_kafka.from_structured(message, JSONFormat())
            assert record.key.decode() == event.get_data()["repository"]
            assert event.get_type().startswith("dev.ocicat.") and event.get_source() == cluster.stack.api
            seen.setdefault(record.key.decode(), []).append(int(event.get_id()))
    finally:
        consumer.close()
    expected: dict[str, list[int]] = {}
    for row in outbox:
        expected.setdefault(row["repository"], []).append(row["id"])
    # At least once: a batch the killed dispatcher sent but had not marked is sent again, so a consumer may see an
    # event twice, and dedupes by its id; after dedupe each repository's events are exactly the outbox's, in order.
    assert {repository: list(dict.fromkeys(ids)) for repository, ids in seen.items()} == expected


def test_a_push_then_a_delete_of_the_same_manifest_ends_deleted(cluster):
    worker = cluster.worker("a")
    wait_until(lambda: assignments(worker), 60, 0.2, "the worker to get its partitions")
    repositories = one_repository_per_partition(f"gone-{uuid.uuid4().hex[:8]}")
    registry = cluster.stack.registry.url
    for i, repository in enumerate(repositories):
        digest = push_image(registry, repository, "v1")
        if i % 2:  # indexed first, then deleted; the others are deleted before the worker can fetch them
            wait_until(lambda: cluster.visible({(repository, "v1"): digest}), 60, 0.1, "the push indexed")
        assert requests.delete(f"{registry}/v2/{repository}/manifests/{digest}", timeout=10).status_code == 202
    kept = {(f"{repositories[0]}-kept", "v1"): push_image(registry, f"{repositories[0]}-kept", "v1")}

    # The registry notifies in order, so once the last push is indexed every event is on the topic.
    wait_until(lambda: cluster.visible(kept), 60, 0.2, "the last push indexed")
    wait_until(lambda: cluster.committed() == cluster.ends(), 60, 0.5, "every event settled")
    assert all(cluster.stack.tags(repository) == {} for repository in repositories)
    assert cluster.count("manifests") == 1 and cluster.count("dead_letters") == 0


def test_the_receiver_answers_503_while_the_broker_is_down_and_nothing_is_lost(cluster):
    worker = cluster.worker("a")
    registry = cluster.stack.registry.url
    repository = f"outage-{uuid.uuid4().hex[:8]}/app"
    before = {(repository, "v1"): push_image(registry, repository, "v1")}
    wait_until(lambda: cluster.visible(before), 60, 0.2, "the first push indexed")

    cluster.broker.go_down()
    direct = push_event(str(uuid.uuid4()), repository, before[(repository, "v1")], tag="direct",
                        timestamp=datetime.now(timezone.utc).isoformat())
    refused = cluster.stack.post_events(envelope(direct))  # (its message may still reach the broker later)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    during = {(repository, "v2"): push_image(registry, repository, "v2"),
              (f"{repository}-2", "v1"): push_image(registry, f"{repository}-2", "v1")}
    wait_until(lambda: cluster.stack.server.output().count("asking the registry to retry") >= 3, 60, 0.2,
               "the registry's notifications refused and retried")
    assert not cluster.visible(during)
    assert cluster.stack.get("/readyz").status_code == 503  # the bus is unreachable: not ready
    cluster.broker.come_back()
    wait_until(lambda: cluster.stack.get("/readyz").status_code == 200, 60, 0.2, "ready again")

    wait_until(lambda: cluster.visible({**before, **during}), 60, 0.2, "the pushes made during the outage")
    assert cluster.stack.post_events(envelope(direct)).status_code == 200  # what the registry would do next
    wait_until(lambda: "direct" in cluster.stack.tags(repository), 60, 0.2, "the re-sent event")
    assert cluster.count("dead_letters") == 0 and worker.process.poll() is None


def test_a_stopped_worker_finishes_commits_and_leaves_the_group_for_the_other(cluster):
    a = cluster.worker("a")
    b = cluster.worker("b", OCICAT_LOG_LEVEL="DEBUG")
    wait_sharing(a, b)
    repositories = one_repository_per_partition(f"term-{uuid.uuid4().hex[:8]}")
    pushed: dict = {}
    pusher = _push_stream(cluster, repositories, 48, pushed)
    wait_until(lambda: len(indexed(a)) >= 5, 60, 0.05, "worker a to be busy")
    a.process.send_signal(signal.SIGTERM)
    a.process.wait(25)
    assert a.process.returncode == 0 and "kafka: left group" in a.output() and "worker stopped" in a.output()
    wait_until(lambda: assignments(b)[-1] == set(range(PARTITIONS)), 60, 0.2, "b to take over every partition")
    # a left the group, so the rebalance began at once, not after a's 10 s session ran out: b heard of it
    # at its next heartbeat (every 3 s).
    left = _logged_at(a, "kafka: left group")
    revoked = min(t for t in _logged_at_all(b, "kafka: partitions") if t >= left)
    assert revoked - left < 6, (left, revoked)
    pusher.join(60)
    wait_until(lambda: cluster.visible(pushed), 60, 0.2, "every push in the tags API")
    # Everything a settled was committed before it left: b is handed none of it again.
    assert "already processed" not in b.output()
    assert not set(indexed(a)) & set(indexed(b))
    assert cluster.count("processed_events") == 48 and cluster.count("dead_letters") == 0


# -- the bus in this process, against the real broker and database ---------------------


def _bus_config(broker: KafkaBroker, **env) -> Config:
    run = uuid.uuid4().hex[:8]
    return Config.from_env({"OCICAT_KAFKA_BOOTSTRAP": broker.bootstrap, "OCICAT_KAFKA_TOPIC": f"events-{run}",
                            "OCICAT_KAFKA_GROUP": f"indexers-{run}", "OCICAT_KAFKA_PARTITIONS": str(PARTITIONS),
                            **{key: str(value) for key, value in env.items()}})


class Member:
    """A worker's bus consumer in a thread of this process, with a database pool of its own."""

    def __init__(self, database_url: str, config: Config, handler, concurrency: int = CONCURRENCY):
        self.db = Database(database_url, maxconn=2 * concurrency + 2, synchronous_commit=True)
        self.bus = KafkaBus(self.db, config.kafka, config.max_attempts)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.bus.consume, args=(handler, self.stop, concurrency), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(40)
        assert not self.thread.is_alive(), "the consumer stops when told to"
        self.bus.close()
        self.db.close()


def _publish(bus, *events: dict) -> None:
    bus.publish([Event.load(e) for e in events], [])


def test_a_message_that_keeps_failing_is_dead_lettered_without_holding_up_its_partition(db, registry, broker,
                                                                                          database_url, monkeypatch):
    monkeypatch.setattr(settle, "backoff_seconds", lambda attempt, base=0.5, cap=300.0: 60.0)  # due when the test says
    config = _bus_config(broker, OCICAT_MAX_ATTEMPTS=2)
    repository = f"flaky-{uuid.uuid4().hex[:8]}/app"
    failing_digest = push_image(registry.url, repository, "v1")
    next_digest = push_image(registry.url, repository, "v2")
    failing, behind = fresh_push_event(repository, failing_digest, "v1"), fresh_push_event(repository, next_digest, "v2")
    registry_down = threading.Event()
    registry_down.set()
    indexer = EventIndexer(db, RegistryClient(registry.url))

    def handler(cur, raw):
        if raw["id"] == failing["id"] and registry_down.is_set():
            raise TransientError("registry unavailable")
        index_now(indexer, cur, raw)

    member = Member(database_url, config, Step(handler))
    try:
        _publish(member.bus, failing, behind)  # one repository: one partition, in this order
        wait_until(lambda: tag_digest(db, repository, "v2") == next_digest, 60, 0.1, "the event behind the failing one")
        [row] = queue_rows(db)  # moved off the partition to the delayed retries
        assert row["event_id"] == failing["id"] and row["attempts"] == 1 and row["delayed"]
        assert "registry unavailable" in row["last_error"]

        make_due(db)  # the second attempt is the last (OCICAT_MAX_ATTEMPTS=2): the worker's retry drain parks it
        [letter] = wait_until(lambda: dead_letters(db), 60, 0.1, "the dead letter")
        assert letter["event_id"] == failing["id"] and letter["attempts"] == 2 and letter["stage"] == "worker"
        assert "gave up after 2 attempts" in letter["reason"] and queue_rows(db) == []

        registry_down.clear()
        replayed = subprocess.run([*OCICAT, "dlq", "replay", "--all"], env=python_env(OCICAT_DATABASE_URL=database_url),
                                  cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert replayed.returncode == 0 and "replayed 1 event(s)" in replayed.stdout
        wait_until(lambda: tag_digest(db, repository, "v1") == failing_digest, 60, 0.1, "the replayed event indexed")
    finally:
        member.close()


def test_an_event_whose_repository_is_busy_waits_off_its_partition_without_spending_an_attempt(db, registry, broker,
                                                                                                  database_url):
    repository = f"busy-{uuid.uuid4().hex[:8]}/app"
    digest = push_image(registry.url, repository, "v1")
    other = connect(database_url)  # another worker, in the middle of an event for the repository
    other.cursor().execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (repository,))
    member = Member(database_url, _bus_config(broker, OCICAT_MAX_ATTEMPTS=1), EventIndexer(db, RegistryClient(registry.url)))
    try:
        _publish(member.bus, fresh_push_event(repository, digest, "v1"))
        [row] = wait_until(lambda: queue_rows(db), 60, 0.05, "the busy event moved to the queue table")
        due_times = set()

        def tried_again() -> bool:  # each try while busy puts the event back, due a moment later
            with db.transaction() as cur:
                cur.execute("SELECT available_at FROM event_queue")
                due_times.update(r["available_at"] for r in cur.fetchall())
            return len(due_times) >= 3

        wait_until(tried_again, 60, 0.02, "the retry drain to try the busy event again")
        [row] = queue_rows(db)
        assert row["attempts"] == 0 and dead_letters(db) == []  # with OCICAT_MAX_ATTEMPTS=1 one attempt would park it
        other.close()
        wait_until(lambda: tag_digest(db, repository, "v1") == digest, 60, 0.1, "the event indexed once free")
        assert queue_rows(db) == [] and dead_letters(db) == []
    finally:
        other.close()
        member.close()


def test_a_rebalance_lets_the_messages_in_hand_finish_before_their_partitions_move(db, registry, broker,
                                                                                     database_url, monkeypatch):
    """A second worker joins while the first is in the middle of two slow events, on the first and the last
    partition: whichever half the newcomer gets, one of them moves, and never while it is being worked on."""
    # Slow enough that the rebalance (about half the 10 s session on this broker, from the heartbeat that
    # tells the first member about it) would complete while they still run, were nothing waiting for them.
    monkeypatch.setattr(kafka_consumer, "HEARTBEAT_INTERVAL_MS", 1_000)
    monkeypatch.setattr(kafka_consumer, "REVOKE_GRACE_SECONDS", 9.0)
    slow_seconds = 8.0

    config = _bus_config(broker)
    repositories = one_repository_per_partition(f"move-{uuid.uuid4().hex[:8]}")
    pushed = {(repository, f"v{i}"): push_image(registry.url, repository, f"v{i}", seed=str(i))
              for repository in repositories for i in range(3)}
    events = [fresh_push_event(repository, pushed[(repository, f"v{i}")], f"v{i}")
              for i in range(3) for repository in repositories]
    slow = {e["id"] for e in events[:1] + events[PARTITIONS - 1:PARTITIONS]}  # v0 of partitions 0 and 5
    started, spans, lock = set(), [], threading.Lock()

    def handler_of(member: str):
        indexer = EventIndexer(db, RegistryClient(registry.url))

        def handle(cur, raw):
            began = time.monotonic()
            with lock:
                started.add((member, raw["id"]))
            if raw["id"] in slow:
                time.sleep(slow_seconds)
            index_now(indexer, cur, raw)
            with lock:
                spans.append((member, raw["id"], began, time.monotonic()))

        return Step(handle)

    first = Member(database_url, config, handler_of("first"))
    second = None
    try:
        _publish(first.bus, *events)
        wait_until(lambda: {("first", event_id) for event_id in slow} <= started, 60, 0.05, "both slow events started")
        second = Member(database_url, config, handler_of("second"), concurrency=1)
        wait_until(lambda: all(tag_digest(db, repository, tag) == digest for (repository, tag), digest in pushed.items()),
                   60, 0.2, "every event indexed")
        wait_until(lambda: any(member == "second" for member, *_ in spans), 60, 0.2, "the second member to get work")
    finally:
        for member in (first, second):
            if member is not None:
                member.close()
    for event_id in slow:
        runs = sorted((began, ended, member) for member, id_, began, ended in spans if id_ == event_id)
        assert runs[0][2] == "first" and runs[0][1] - runs[0][0] >= slow_seconds
        for (_, ended, _), (began, _, _) in zip(runs, runs[1:]):
            assert began >= ended, f"{event_id} worked on by two members at once: {runs}"
    assert dead_letters(db) == [] and queue_rows(db) == []


def test_a_backlog_on_every_partition_is_drained_to_the_last_message(db, broker, database_url):
    """Hundreds of events waiting on every partition, taken in batches while others run: none is left behind."""
    count = 600
    seen, lock = Counter(), threading.Lock()

    def handler(cur, raw):
        time.sleep(0.005)  # long enough for partitions to be paused while polls go on
        with lock:
            seen[raw["id"]] += 1

    events = [fresh_push_event(f"backlog/app-{i % 24}", "sha256:" + "a" * 64, f"v{i}") for i in range(count)]
    config = _bus_config(broker)
    publisher = KafkaBus(db, config.kafka, config.max_attempts)
    try:
        senders = [threading.Thread(target=_publish, args=(publisher, *events[k::8])) for k in range(8)]
        for sender in senders:  # several producer threads, as in a receiver: many small batches on the broker
            sender.start()
        for sender in senders:
            sender.join(30)
    finally:
        publisher.close()
    member = Member(database_url, config, Step(handler), concurrency=4)
    try:
        wait_until(lambda: len(seen) == count, 60, 0.2, f"all {count} events handled")
    finally:
        member.close()
    assert set(seen) == {e["id"] for e in events} and max(seen.values()) == 1  # once each: nothing redelivered
