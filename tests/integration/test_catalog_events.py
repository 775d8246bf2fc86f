"""Catalog events: recorded in the transaction of the catalog change that causes them, from real pushes, moves and
deletes (real Helm, a real registry notifying a real `ocicat serve`) and from a crawl; rendered as CloudEvents."""

from __future__ import annotations

import uuid

import requests
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat

from harness.helm import helm_push, make_chart
from harness.oci import push_artifact, push_image
from harness.processes import wait_until
from indexer.delivery.render import cloudevent, kafka_message
from indexer.registry import RegistryClient
from indexer.resync import Resync

from .probes import catalog_events, catalog_manifests, catalog_tags, replay_events


def _types(events: list[dict]) -> list[tuple]:
    return [(e["type"], e["tag"], e["digest"]) for e in events]


def _until(stack, repository: str, count: int) -> list[dict]:
    """The repository's events once there are ``count`` of them, all dispatched."""
    return wait_until(
        lambda: (events := catalog_events(stack.db, repository)) and len(events) >= count
        and all(e["dispatched_at"] for e in events) and events,
        timeout=60, what=f"{count} dispatched catalog events of {repository}")


def test_helm_push_publishes_a_chart_version_with_what_a_receiver_needs(stack, tmp_path):
    namespace = f"team-{uuid.uuid4().hex[:8]}/charts"
    repository = f"{namespace}/webapp"
    helm_push(make_chart(tmp_path, "webapp", "1.2.3+build.4", app_version="2.0.1", description="Web application"),
              stack.registry, namespace)

    published = [e for e in _until(stack, repository, 1) if e["type"] == "chart.version.published"]
    assert len(published) == 1
    event = published[0]
    assert event["crawl"] is False and event["digest"].startswith("sha256:")
    assert event["data"]["chart"] == {"name": "webapp", "version": "1.2.3+build.4", "app_version": "2.0.1",
                                      "description": "Web application", "upgrade": None}
    assert event["data"]["kind"] == "helm-chart" and event["data"]["namespace"] == namespace
    assert event["data"]["origin"] == "registry"

    # As a CloudEvent, through the SDK's own parser: the attributes, and links that answer.
    message = kafka_message(cloudevent(event, stack.api))
    parsed = kafka.from_structured(kafka.KafkaMessage(message.headers, message.key, message.value), JSONFormat())
    assert parsed.get_type() == "dev.ocicat.chart.version.published"
    assert parsed.get_source() == stack.api and parsed.get_id() == str(event["id"])
    assert parsed.get_subject() in (f"{repository}:1.2.3_build.4", f"{repository}@{event['digest']}")
    assert message.key == repository
    links = parsed.get_data()["links"]
    assert links["api"] == f"{stack.api}/api/v1/charts/{repository}/-/versions/1.2.3%2Bbuild.4"
    assert requests.get(links["api"], timeout=10).json()["digest"] == event["digest"]
    assert requests.get(links["ui"], timeout=10).status_code == 200

    # Helm pushes the manifest by digest, then tags it: two registry events, in either order. Replayed, the
    # catalog events give the catalog's state, the tag included, and announce the chart once.
    wait_until(lambda: replay_events(catalog_events(stack.db, repository))[0], timeout=60, what="the tag's event")
    live, manifests, twice = replay_events(catalog_events(stack.db, repository))
    assert live == {repository: {"1.2.3_build.4": event["digest"]}} and not twice
    assert manifests == {(repository, event["digest"])}


def test_a_moved_tag_and_a_deleted_manifest_are_announced_with_their_digests(stack):
    repository = f"apps-{uuid.uuid4().hex[:8]}/api"
    first = push_image(stack.registry.url, repository, "v1", seed="a")
    _until(stack, repository, 1)
    second = push_image(stack.registry.url, repository, "v1", seed="b")
    events = _until(stack, repository, 3)
    assert _types(events) == [("image.published", "v1", first), ("image.published", "v1", second),
                              ("tag.moved", "v1", second)]
    assert events[2]["data"]["previous_digest"] == first and events[2]["data"]["kind"] == "image"

    assert requests.delete(f"{stack.registry.url}/v2/{repository}/manifests/{second}", timeout=10).status_code == 202
    events = _until(stack, repository, 5)
    assert _types(events[3:]) == [("tag.deleted", "v1", None), ("manifest.deleted", None, second)]
    assert events[3]["data"]["previous_digest"] == second
    # The registry also sends a delete event of its own for the tag; the manifest's event lists the tag it took
    # with it unless that one was indexed first (the registry's two events can arrive in either order).
    assert events[4]["data"]["tags"] in (["v1"], []) and events[4]["data"]["kind"] == "image"
    links = cloudevent(events[4], stack.api).get_data()["links"]
    assert links["api"] == f"{stack.api}/api/v1/repositories/{repository}"


def test_an_attachment_is_announced_with_its_subject(stack):
    repository = f"signed-{uuid.uuid4().hex[:8]}/api"
    subject = push_image(stack.registry.url, repository, "v1")
    sbom = push_artifact(stack.registry.url, repository, None, artifact_type="application/spdx+json",
                         layers=[("application/spdx+json", b'{"spdxVersion": "SPDX-2.3"}')], subject=subject)
    events = _until(stack, repository, 2)
    attached = [e for e in events if e["type"] == "attachment.added"]
    assert [(e["digest"], e["data"]["subject_digest"], e["data"]["kind"]) for e in attached] == [(sbom, subject, "sbom")]
    links = cloudevent(attached[0], stack.api).get_data()["links"]
    assert links["api"].endswith(f"/-/manifests/{subject}")


def test_a_crawl_announces_what_it_repairs_marked_as_a_crawl_and_nothing_twice(db, registry):
    repository = f"crawled-{uuid.uuid4().hex[:8]}/app"
    kept = push_image(registry.url, repository, "v1", seed="kept")
    doomed = push_image(registry.url, repository, "old", seed="doomed")
    client = RegistryClient(registry.url)
    assert not Resync(db, client, concurrency=1).run(repository).failed
    events = catalog_events(db, repository)
    assert sorted(_types(events)) == [("image.published", "old", doomed), ("image.published", "v1", kept)]
    assert all(e["crawl"] and e["data"]["origin"] == "crawl" for e in events)

    assert not Resync(db, client, concurrency=1).run(repository).failed
    assert len(catalog_events(db, repository)) == 2  # nothing changed, nothing announced

    assert requests.delete(f"{registry.url}/v2/{repository}/manifests/{doomed}", timeout=10).status_code == 202
    assert not Resync(db, client, concurrency=1).run(repository).failed
    later = catalog_events(db, repository)[2:]
    assert {e["type"] for e in later} >= {"tag.deleted"} and all(e["crawl"] for e in later)
    live, manifests, twice = replay_events(catalog_events(db, repository))
    assert live == {repository: catalog_tags(db)[repository]} and not twice
    assert manifests == {m for m in catalog_manifests(db) if m[0] == repository}
