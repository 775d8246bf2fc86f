"""Catalog events' pure pieces: event types by kind, CloudEvent attributes and links, the public URL setting."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from indexer.delivery.render import cloudevent, links
from ocicat.catalog.outbox import published_type
from ocicat.config import Config, ConfigError

BASE = "https://catalog.example.com"


@pytest.mark.parametrize("kind, subject, expected", [
    ("helm-chart", None, "chart.version.published"),
    ("image", None, "image.published"),
    ("index", None, "index.published"),
    ("wasm", None, "wasm.published"),
    ("signature", "sha256:" + "a" * 64, "attachment.added"),
    ("artifact", "sha256:" + "a" * 64, "attachment.added"),
])
def test_a_new_manifest_is_published_by_kind_and_an_attachment_is_added(kind, subject, expected):
    assert published_type(kind, subject) == expected


def test_links_go_to_the_chart_version_the_manifest_the_subject_or_the_repository():
    chart = {"repository": "team/charts/web app", "digest": "sha256:1", "chart": {"version": "1.0.0+b.1"}}
    assert links(BASE, "tag.moved", chart) == {
        "ui": f"{BASE}/ui/charts/team/charts/web%20app/1.0.0%2Bb.1",
        "api": f"{BASE}/api/v1/charts/team/charts/web%20app/-/versions/1.0.0%2Bb.1"}
    image = {"repository": "apps/api", "digest": "sha256:2", "chart": None}
    assert links(BASE, "image.published", image)["api"] == f"{BASE}/api/v1/repositories/apps/api/-/manifests/sha256:2"
    attachment = {"repository": "apps/api", "digest": "sha256:3", "subject_digest": "sha256:2", "chart": None}
    assert links(BASE, "attachment.added", attachment)["ui"] == f"{BASE}/ui/repositories/apps/api/-/manifests/sha256:2"
    assert links(BASE, "manifest.deleted", {**chart, "tags": ["1.0.0_b.1"]}) == {
        "ui": f"{BASE}/ui/repositories/team/charts/web%20app", "api": f"{BASE}/api/v1/repositories/team/charts/web%20app"}


def test_a_cloudevent_carries_the_type_subject_time_and_partition_key():
    at = datetime(2026, 5, 4, 10, 12, 1, tzinfo=timezone.utc)
    row = {"id": 42, "type": "tag.deleted", "repository": "apps/api", "tag": "v1", "digest": None, "occurred_at": at,
           "data": {"repository": "apps/api", "namespace": "apps", "tag": "v1", "digest": None,
                    "previous_digest": "sha256:2", "origin": "registry"}}
    event = cloudevent(row, BASE)
    assert (event.get_id(), event.get_type(), event.get_source(), event.get_subject(), event.get_time()) == (
        "42", "dev.ocicat.tag.deleted", BASE, "apps/api:v1", at)
    assert event.get_extension("partitionkey") == "apps/api"
    assert event.get_data()["previous_digest"] == "sha256:2"
    untagged = cloudevent({**row, "type": "manifest.deleted", "tag": None, "digest": "sha256:2"}, BASE)
    assert untagged.get_subject() == "apps/api@sha256:2"


@pytest.mark.parametrize("listen, expected", [("0.0.0.0:9000", "http://127.0.0.1:9000"),
                                              ("[::]:9000", "http://127.0.0.1:9000"),
                                              ("10.1.2.3:8080", "http://10.1.2.3:8080")])
def test_the_public_url_defaults_to_where_the_api_listens(listen, expected):
    assert Config.from_env({"OCICAT_LISTEN": listen}).public_url == expected


@pytest.mark.parametrize("raw", ["ftp://catalog", "https://user:pw@catalog", "https://catalog/?q=1", "catalog"])
def test_a_public_url_that_is_no_plain_http_url_is_refused(raw):
    with pytest.raises(ConfigError, match="OCICAT_PUBLIC_URL"):
        Config.from_env({"OCICAT_PUBLIC_URL": raw})


def test_the_catalog_topic_must_differ_from_the_bus_topic():
    with pytest.raises(ConfigError, match="OCICAT_KAFKA_CATALOG_TOPIC must differ"):
        Config.from_env({"OCICAT_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "OCICAT_KAFKA_TOPIC": "same",
                         "OCICAT_KAFKA_CATALOG_TOPIC": "same"})
