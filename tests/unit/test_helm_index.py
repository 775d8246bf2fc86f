"""The Helm repository index as put together from the catalog's entries (JSON, which is YAML, one entry a line,
the same bytes for the same entries), and the cache of written indexes. The entries themselves are written by
PostgreSQL: tests/integration/test_helm_repository.py."""

from __future__ import annotations

import gzip
import json
import threading
import time
from datetime import datetime, timezone

import yaml

from api.helm_index import Index, IndexCache, gunzipped, gzipped, repository_of, write

PUSHED = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)


def _entry(name: str, version: str) -> tuple[str, str]:
    return name, json.dumps({"name": name, "version": version, "urls": [f"charts/{name}-{version}.tgz"]})


def test_the_index_is_json_which_is_yaml_grouped_by_chart_one_entry_a_line():
    entries = [_entry("db", "0.1.0"), _entry("webapp", "2.0.0"), _entry("webapp", "1.0.0")]
    text = b"".join(write(entries, PUSHED)).decode()
    assert json.loads(text) == yaml.safe_load(text)
    doc = json.loads(text)
    assert list(doc) == ["apiVersion", "entries", "generated"] and doc["apiVersion"] == "v1"
    assert [v["version"] for v in doc["entries"]["webapp"]] == ["2.0.0", "1.0.0"]
    assert doc["entries"]["db"] == [{"name": "db", "version": "0.1.0", "urls": ["charts/db-0.1.0.tgz"]}]
    assert doc["generated"] == PUSHED.isoformat()
    assert len(text.splitlines()) == 1 + (1 + 1) + (1 + 2) + 1  # head, (chart line, its entries) each, tail


def test_characters_yaml_refuses_or_reads_as_line_breaks_are_escaped():
    description = "bell\x07 del\x7f csi\x9b nel\x85 ls\u2028 nonchar\uffff ok é 😀"
    text = b"".join(write([("webapp", json.dumps({"description": description}, ensure_ascii=False))], PUSHED))
    assert yaml.safe_load(text)["entries"]["webapp"][0]["description"] == description  # PyYAML refuses them raw
    assert json.loads(text)["entries"]["webapp"][0]["description"] == description


def test_an_empty_index_is_still_an_index():
    assert json.loads(b"".join(write([], PUSHED))) == {"apiVersion": "v1", "entries": {},
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


def test_nothing_to_list_is_not_kept_and_a_failed_writing_leaves_nothing_behind():
    cache = IndexCache(max_bytes=1000)
    assert cache.get_or_write("gone", lambda: None) is None
    try:
        cache.get_or_write("broken", lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    assert cache._writing == {} and cache.get("gone") is None


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
