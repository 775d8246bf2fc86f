"""The read API's contract on the running service: pagination, links, and clean errors for odd input."""

from __future__ import annotations

import uuid
from urllib.parse import urljoin

import psycopg2
import pytest
import requests

from harness.oci import push_image
from harness.processes import wait_until
from ocicat.cli import build_app
from ocicat.config import Config


@pytest.fixture(scope="module")
def paged(stack):
    """A namespace with five repositories, one of them with five tags."""
    namespace = f"paging-{uuid.uuid4().hex[:8]}"
    names = [f"{namespace}/repo-{i}" for i in range(5)]
    for name in names:
        push_image(stack.registry.url, name, "v0", seed=name)
    for i in range(1, 5):
        push_image(stack.registry.url, names[0], f"v{i}", seed=f"{i}")
    wait_until(lambda: len(stack.tags(names[0])) == 5 and all(stack.tags(n) for n in names), timeout=10,
               what="the paging fixture to be indexed")
    return namespace, names


def _walk(stack, path, **params):
    """Follow Link headers from the first page to the last; return the items in order."""
    items, url, pages = [], f"{stack.api}{path}", 0
    response = requests.get(url, params=params, timeout=10)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        pages += 1
        if not body["next_cursor"]:
            assert "Link" not in response.headers
            return items, pages
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"') and f"cursor={body['next_cursor']}" in link
        response = requests.get(urljoin(stack.api, link[1:link.index(">")]), timeout=10)


def test_repositories_page_through_links_without_gaps_or_repeats(stack, paged):
    namespace, names = paged
    items, pages = _walk(stack, "/api/v1/repositories", namespace=namespace, limit=2)
    assert [r["name"] for r in items] == names and pages == 3
    assert stack.get("/api/v1/repositories", namespace=f"{namespace}/").json()["items"][0]["name"] == names[0]
    # A namespace matches whole path components: "paging" is not a prefix of "paging-1234".
    assert stack.get("/api/v1/repositories", namespace="paging").json()["items"] == []


def test_tags_page_through_links(stack, paged):
    _, names = paged
    items, pages = _walk(stack, f"/api/v1/repositories/{names[0]}/-/tags", limit=2)
    assert [t["name"] for t in items] == ["v0", "v1", "v2", "v3", "v4"] and pages == 3


def test_link_keeps_filters_and_ignores_routing_lookalikes(stack, paged):
    namespace, names = paged
    response = stack.get("/api/v1/repositories", namespace=namespace, limit=1, endpoint="x", _external="1",
                         _anchor="a", name="zzz", _method="POST")
    assert response.status_code == 200
    link = response.headers["Link"]
    assert link.startswith("</api/v1/repositories?") and "#" not in link and f"namespace={namespace}" in link
    tags = stack.get(f"/api/v1/repositories/{names[0]}/-/tags", limit=1, endpoint="list_repositories", kind="image")
    assert tags.status_code == 200 and "endpoint=list_repositories" in tags.headers["Link"]


@pytest.mark.parametrize("path, params", [
    ("/api/v1/repositories", {"limit": "abc"}),
    ("/api/v1/repositories", {"limit": "0"}),
    ("/api/v1/repositories", {"limit": "-1"}),
    ("/api/v1/repositories", {"limit": "100000"}),
    ("/api/v1/repositories", {"cursor": "garbage!"}),
    ("/api/v1/repositories", {"cursor": "WzVd"}),              # [5]
    ("/api/v1/repositories", {"cursor": "W3RydWVd"}),          # [true]
    ("/api/v1/repositories", {"cursor": "WyJhXHUwMDAwIl0"}),   # ["a\u0000"]
    ("/api/v1/repositories", {"cursor": "WyJcdWQ4MDAiXQ"}),    # ["\ud800"]
    ("/api/v1/repositories", {"namespace": "a\x00b"}),
    ("/api/v1/repositories", {"namespace": "x" * 300}),
    ("/api/v1/repositories", {"namespace": "%' OR 1=1 --"}),
])
def test_bad_parameters_get_400_problems(stack, path, params):
    response = stack.get(path, **params)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 400


@pytest.mark.parametrize("path", [
    "/api/v1/repositories/x%00y/-/tags",
    "/api/v1/repositories/UPPER/-/tags",
    "/api/v1/repositories/a/b'%20OR%201=1/-/tags",
    "/api/v1/charts/x%00/-/versions/1",
    "/api/v1/charts/x/-/versions/1%000",
    "/api/v1/charts/nope/-/versions/1.0.0",
    "/api/v1/nothing-here",
])
def test_unknown_or_impossible_names_get_404_problems(stack, path):
    response = requests.get(f"{stack.api}{path}", timeout=10)
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"] == "application/problem+json"


def test_etag_revalidation_and_cors(stack, paged):
    namespace, _ = paged
    first = stack.get("/api/v1/repositories", namespace=namespace, limit=2)
    etag = first.headers["ETag"]
    again = requests.get(f"{stack.api}/api/v1/repositories", params={"namespace": namespace, "limit": 2},
                         headers={"If-None-Match": etag, "Origin": "https://ui.example"}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    cors = requests.get(f"{stack.api}/api/v1/repositories", params={"namespace": namespace, "limit": 2},
                        headers={"Origin": "https://ui.example"}, timeout=10)
    assert cors.headers["Access-Control-Allow-Origin"] == "*"
    assert "Link" in cors.headers["Access-Control-Expose-Headers"]


def test_search_without_pg_trgm_is_full_text_only(make_database):
    """Where pg_trgm cannot be had (the embedded PostgreSQL has no contrib), nothing but typo tolerance changes."""
    url = make_database()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    conn.cursor().execute("DROP EXTENSION IF EXISTS pg_trgm CASCADE")
    conn.close()
    app = build_app(Config(database_url=url, default_visibility="public"))
    answer = app.test_client().get("/api/v1/search", query_string={"q": "ngnix"})
    assert answer.status_code == 200 and answer.json["items"] == [] and answer.json["similar"] is False
    app.extensions["ocicat"].db.close()
