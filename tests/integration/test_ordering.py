"""Exactly-once in effect: duplicated and reordered deliveries converge on the in-order catalog.

The events are the real ones a CNCF registry sent for real pushes, retags and
deletes; they are then delivered to ocicat's receiver in order once, and again
shuffled with every envelope three times.
"""

from __future__ import annotations

import random

import pytest
import requests

from harness.events import Recorder
from harness.helm import helm_push, make_chart
from harness.oci import push_image
from harness.registry import Registry
from indexer.bus import PostgresQueue
from indexer.indexing import EventIndexer
from indexer.registry import RegistryClient
from ocicat.cli import build_app
from ocicat.config import Config

SECRET = "ordering-secret"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A registry's real notifications for a history with tag moves, deletes and a re-push."""
    recorder = Recorder()
    registry = Registry(notify_url=recorder.url, secret=SECRET).start()
    workdir = tmp_path_factory.mktemp("charts")
    try:
        charts = "team/charts/demo"
        helm_push(make_chart(workdir, "demo", "1.0.0"), registry, "team/charts")
        helm_push(make_chart(workdir, "demo", "1.1.0"), registry, "team/charts")
        d1 = requests.head(f"{registry.url}/v2/{charts}/manifests/1.0.0",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).headers["Docker-Content-Digest"]
        for version in ("1.0.0", "1.1.0"):  # "stable" moves from 1.0.0 to 1.1.0
            manifest = requests.get(f"{registry.url}/v2/{charts}/manifests/{version}",
                                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            requests.put(f"{registry.url}/v2/{charts}/manifests/stable", data=manifest.content,
                         headers={"Content-Type": manifest.headers["Content-Type"]}).raise_for_status()
        old_image = push_image(registry.url, "team/app", "v1", seed="first")
        push_image(registry.url, "team/app", "v1", seed="second")  # v1 moves
        requests.delete(f"{registry.url}/v2/{charts}/manifests/{d1}").raise_for_status()
        requests.delete(f"{registry.url}/v2/team/app/manifests/{old_image}").raise_for_status()
        again = make_chart(workdir, "demo", "1.2.0")
        helm_push(again, registry, "team/charts")  # pushed, deleted, pushed again
        d5 = requests.head(f"{registry.url}/v2/{charts}/manifests/1.2.0",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).headers["Docker-Content-Digest"]
        requests.delete(f"{registry.url}/v2/{charts}/manifests/{d5}").raise_for_status()
        helm_push(again, registry, "team/charts")
        recorder.wait_quiet()
        yield registry, list(recorder.envelopes)
    finally:
        registry.close()
        recorder.close()


def _deliver(db, registry, envelopes, drain_points):
    """Post envelopes to the real receiver app and drain the queue at the given positions."""
    config = Config(database_url=db.url, webhook_secrets=(SECRET,), registry_url=registry.url)
    app = build_app(config)
    client = app.test_client()
    queue = PostgresQueue(db)  # the bus build_app gave the receiver: the same queue table
    indexer = EventIndexer(db, RegistryClient(registry.url))
    for position, body in enumerate(envelopes):
        response = client.post("/api/v1/events", data=body, headers={"Authorization": f"Bearer {SECRET}"},
                               content_type="application/vnd.docker.distribution.events.v1+json")
        assert response.status_code == 200
        if position in drain_points:
            while queue.process_one(indexer):
                pass
    while queue.process_one(indexer):
        pass
    app.extensions["ocicat"].db.close()


def _snapshot(db) -> dict:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM event_queue UNION ALL SELECT count(*) FROM dead_letters")
        assert [r["n"] for r in cur.fetchall()] == [0, 0]
        cur.execute(
            "SELECT r.name, m.digest, m.kind, m.media_type, m.size_bytes, m.pushed_at, m.error, m.annotations,"
            " c.name AS chart, c.version FROM manifests m JOIN repositories r ON r.id = m.repository_id"
            " LEFT JOIN helm_charts c ON c.manifest_id = m.id ORDER BY 1, 2"
        )
        manifests = [tuple(row.values()) for row in cur.fetchall()]
        cur.execute("SELECT r.name, t.name AS tag, t.digest, t.event_at FROM tags t"
                    " JOIN repositories r ON r.id = t.repository_id ORDER BY 1, 2")
        tags = [tuple(row.values()) for row in cur.fetchall()]
    return {"manifests": manifests, "tags": tags}


def test_duplicated_and_shuffled_delivery_equals_in_order_delivery(db, recorded):
    registry, envelopes = recorded
    assert len(envelopes) >= 15

    _deliver(db, registry, envelopes, drain_points=set(range(len(envelopes))))
    in_order = _snapshot(db)

    live = {(repo, tag): digest for repo, tag, digest, _ in in_order["tags"] if digest}
    assert set(live) == {("team/charts/demo", "1.1.0"), ("team/charts/demo", "stable"),
                         ("team/charts/demo", "1.2.0"), ("team/app", "v1")}
    assert live[("team/charts/demo", "stable")] == live[("team/charts/demo", "1.1.0")]
    assert {tag for (_, tag, digest, _) in in_order["tags"] if digest is None} == {"1.0.0"}  # tombstone
    assert sorted((m[0], m[8], m[9]) for m in in_order["manifests"]) == [
        ("team/app", None, None), ("team/charts/demo", "demo", "1.1.0"), ("team/charts/demo", "demo", "1.2.0")]

    rng = random.Random(20261124)
    for trial in range(3):
        with db.transaction() as cur:
            cur.execute("TRUNCATE repositories, processed_events RESTART IDENTITY CASCADE")
        shuffled = envelopes * 3
        rng.shuffle(shuffled)
        drain_points = set(rng.sample(range(len(shuffled)), k=len(shuffled) // 4))
        _deliver(db, registry, shuffled, drain_points)
        assert _snapshot(db) == in_order, f"trial {trial}"
