"""The read API's contract on the running service: pagination, links, and clean errors for odd input."""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import urljoin

import psycopg2
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.oci import push_chart, push_image
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
    wait_until(lambda: len(stack.tags(names[0])) == 5 and all(stack.tags(n) for n in names), timeout=60,
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


@pytest.fixture(scope="module")
def in_process(stack, paged):
    """The live catalog served in this process (the forged cursors are many; HTTP would only slow them)."""
    push_chart(stack.registry.url, f"{paged[0]}/chart", "1.0.0", "1.0.0")
    wait_until(lambda: stack.tags(f"{paged[0]}/chart"), timeout=60, what="the chart to be indexed")
    app = build_app(Config(database_url=stack.env["OCICAT_DATABASE_URL"], default_visibility="public"))
    yield app.test_client()
    app.extensions["ocicat"].db.close()


def _cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# Values of a cursor's key: what the server writes (ints, floats, timestamps, names) and what it never would,
# extremes of each SQL type among them.
_KEY_VALUE = st.one_of(
    st.sampled_from(["2026-01-01T00:00:00-23:59", "2026-01-01T00:00:00+16:00", "1e39", "-1e39", "99999999999",
                     str(2 ** 63), "nan", "inf", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "", "\u0000"]),
    st.text(max_size=40), st.integers(min_value=-2 ** 70, max_value=2 ** 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.lists(_KEY_VALUE, min_size=4, max_size=4), junk=st.text(max_size=60))
def test_no_cursor_ever_gets_a_server_error_from_any_list(in_process, paged, key, junk):
    """Arbitrary cursors, of the right length for each list (so they reach the SQL) and of none: 400 or 200."""
    namespace, names = paged
    for path, params, length in [
        ("/api/v1/namespaces", {}, 1), ("/api/v1/repositories", {}, 1), ("/api/v1/repositories", {"sort": "-updated"}, 2),
        (f"/api/v1/repositories/{names[0]}/-/tags", {}, 1),
        (f"/api/v1/repositories/{names[0]}/-/tags", {"sort": "-pushed"}, 2),
        ("/api/v1/charts", {}, 1), (f"/api/v1/charts/{namespace}/chart/-/versions", {}, 3),
        ("/api/v1/search", {"q": "repo"}, 4),
    ]:
        for cursor in (_cursor(key[:length]), junk):
            answer = in_process.get(path, query_string={**params, "cursor": cursor})
            assert answer.status_code in (200, 400), (path, cursor, answer.status_code, answer.get_data(as_text=True))


def test_redirects_name_a_path_never_the_host_the_request_claimed(in_process):
    for path in ("/ui", "/"):
        answer = in_process.get(path, headers={"Host": "evil.example"})
        assert answer.status_code in (301, 302, 308) and answer.headers["Location"].startswith("/ui/"), answer.headers
