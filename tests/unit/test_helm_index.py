"""The Helm repository index as written from catalog rows: only values of the types Helm decodes, the form Helm
writes, the same bytes for the same rows; and the cache of written indexes."""

from __future__ import annotations

import gzip
import json
import threading
import time
from datetime import datetime, timezone

import yaml

from api.helm_index import Index, IndexCache, chart_url, entry, gunzipped, gzipped, repository_of, write

PUSHED = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)


def _row(**overrides) -> dict:
    row = {"api_version": "v2", "app_version": "1.16.0", "condition": None, "description": "Web app", "home": "",
           "icon": None, "kube_version": ">=1.25.0", "name": "webapp", "tags": None, "type": "application",
           "version": "1.2.3", "keywords": ["web"], "sources": [], "maintainers": [{"name": "Ops", "email": "o@x.y"}],
           "dependencies": [], "annotations": {}, "deprecated": False, "pushed_at": PUSHED, "namespace": "team",
           "archive_digest": "sha256:" + "ab" * 32}
    row.update(overrides)
    return row


def test_an_entry_has_the_fields_helm_repo_index_writes_and_omits_the_empty_ones():
    assert entry(_row(), "charts/webapp-1.2.3.tgz") == {
        "apiVersion": "v2", "appVersion": "1.16.0", "description": "Web app", "kubeVersion": ">=1.25.0",
        "name": "webapp", "type": "application", "version": "1.2.3", "keywords": ["web"],
        "maintainers": [{"name": "Ops", "email": "o@x.y"}], "digest": "ab" * 32,
        "created": "2026-05-01T10:00:00.123456+00:00", "urls": ["charts/webapp-1.2.3.tgz"]}


def test_values_of_the_wrong_type_are_left_out_rather_than_breaking_the_whole_index():
    row = _row(description=12, keywords=["ok", 3, None], sources="https://not-a-list",
               maintainers=[{"name": "Ops", "email": 5}, "just a string", {"url": ["x"]}],
               dependencies=[{"name": "redis", "version": "17.x", "repository": "oci://r", "tags": ["a", 1],
                              "enabled": "yes", "import-values": ["child"], "alias": 3}, 7, {}],
               annotations={"category": "web", "count": 3, "nested": {"a": 1}}, deprecated=True)
    out = entry(row, "charts/webapp-1.2.3.tgz")
    assert "description" not in out and "sources" not in out
    assert out["keywords"] == ["ok"]
    assert out["maintainers"] == [{"name": "Ops"}]
    assert out["dependencies"] == [{"name": "redis", "version": "17.x", "repository": "oci://r", "tags": ["a"],
                                    "import-values": ["child"]}]
    assert out["annotations"] == {"category": "web"}
    assert out["deprecated"] is True


def test_a_digest_helm_cannot_use_is_left_out():
    assert "digest" not in entry(_row(archive_digest="sha512:" + "cd" * 64), "x.tgz")


def test_archive_urls_are_relative_to_the_index_and_point_at_the_charts_own_namespace():
    assert chart_url(_row(namespace="team"), "team") == "charts/webapp-1.2.3.tgz"
    assert chart_url(_row(namespace="team/sub/deep"), "team") == "sub/deep/charts/webapp-1.2.3.tgz"
    assert chart_url(_row(namespace="team"), "") == "team/charts/webapp-1.2.3.tgz"
    assert chart_url(_row(namespace=""), "") == "charts/webapp-1.2.3.tgz"


def test_the_index_is_json_which_is_yaml_grouped_by_chart_one_entry_a_line():
    rows = [_row(version="2.0.0"), _row(version="1.0.0"), _row(name="db", version="0.1.0")]
    text = b"".join(write(rows, "team", PUSHED)).decode()
    assert json.loads(text) == yaml.safe_load(text)
    doc = json.loads(text)
    assert list(doc) == ["apiVersion", "entries", "generated"] and doc["apiVersion"] == "v1"
    assert [v["version"] for v in doc["entries"]["webapp"]] == ["2.0.0", "1.0.0"]
    assert doc["entries"]["db"][0]["urls"] == ["charts/db-0.1.0.tgz"]
    assert doc["generated"] == PUSHED.isoformat()
    assert len(text.splitlines()) == 1 + 2 * 2 + 1 + 1  # head, (chart line, entries) x 2 with 3 entries, tail
    assert list(json.loads(text.splitlines()[2].rstrip(","))) == sorted(json.loads(text.splitlines()[2].rstrip(",")))


def test_an_empty_index_is_still_an_index():
    assert json.loads(b"".join(write([], "team", PUSHED))) == {"apiVersion": "v1", "entries": {},
                                                                "generated": PUSHED.isoformat()}


def test_gzip_is_deterministic_and_unzips_in_pieces():
    pieces = [b"x" * 100_000, b"y" * 300_000]
    first, size = gzipped(pieces)
    assert first == gzipped(pieces)[0] and size == 400_000
    assert b"".join(gunzipped(first, chunk=1000)) == gzip.decompress(first) == b"".join(pieces)


def test_repository_of_a_namespace():
    assert repository_of("corp/team", "https://cat.example") == {"name": "team",
                                                                  "url": "https://cat.example/helm/corp/team"}
    assert repository_of("", "https://cat.example") == {"name": "ocicat", "url": "https://cat.example/helm"}


def _index(etag: str, size: int) -> Index:
    return Index(gzipped=b"z" * size, size=size, etag=etag, last_modified=PUSHED)


def test_the_cache_keeps_the_recently_used_within_its_bytes():
    cache = IndexCache(max_bytes=250)
    for etag in ("a", "b"):
        cache.get_or_write(etag, lambda etag=etag: _index(etag, 100))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.get_or_write("c", lambda: _index("c", 100))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    cache.get_or_write("huge", lambda: _index("huge", 1000))  # bigger than the cache: served, not kept
    assert cache.get("huge") is None and cache.get("a") is not None


def test_clients_asking_together_cost_one_writing():
    cache, writings, release = IndexCache(max_bytes=10_000), [], threading.Event()

    def slow():
        writings.append(1)
        release.wait(5)
        return _index("e", 10)

    threads = [threading.Thread(target=cache.get_or_write, args=("e", slow)) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # every thread is asking by now
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(writings) == 1 and cache.get("e") is not None
