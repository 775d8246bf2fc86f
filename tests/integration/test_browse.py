"""Browsing and search through the running service: filters, sorts, SemVer order, ranking and facets."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest

from harness.oci import push_chart, push_image
from harness.processes import wait_until


@pytest.fixture(scope="module")
def catalog(stack):
    """Two namespaces: charts with several versions, and images."""
    ns = f"browse{uuid.uuid4().hex[:6]}"
    versions = ["1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "2.0.0-beta.2", "not-semver", "1.9.0"]
    for version in versions:
        push_chart(stack.registry.url, f"{ns}/charts/redis-cache", version.replace("+", "_"), version,
                   description="In-memory cache for sessions", keywords=["cache", "database"])
    push_chart(stack.registry.url, f"{ns}/charts/webapp", "0.1.0", "0.1.0", description="A web app using redis",
               maintainers=[{"name": "Zelda Ops"}])
    push_chart(stack.registry.url, f"{ns}/charts/redis", "17.3.0", "17.3.0", description="Key-value store")
    push_image(stack.registry.url, f"{ns}/images/redis-exporter", "v1", seed="exporter")
    push_image(stack.registry.url, f"{ns}/images/nginx", "1.25", seed="nginx")
    push_image(stack.registry.url, f"{ns}/images/nginx", "1.26", seed="nginx2")
    wait_until(lambda: len(stack.tags(f"{ns}/charts/redis-cache")) == len(versions)
               and stack.tags(f"{ns}/images/nginx").get("1.26") and stack.tags(f"{ns}/charts/redis")
               and stack.tags(f"{ns}/charts/webapp") and stack.tags(f"{ns}/images/redis-exporter"),
               timeout=60, what="the browse catalog")
    return ns


def _names(response):
    assert response.status_code == 200, response.text
    return [item.get("name") or item.get("repository") for item in response.json()["items"]]


def test_repository_filters_and_sorts(stack, catalog):
    ns = catalog
    assert _names(stack.get("/api/v1/repositories", namespace=f"{ns}/images")) == [f"{ns}/images/nginx",
                                                                                 f"{ns}/images/redis-exporter"]
    assert _names(stack.get("/api/v1/repositories", namespace=ns, kind="image")) == [f"{ns}/images/nginx",
                                                                                   f"{ns}/images/redis-exporter"]
    assert _names(stack.get("/api/v1/repositories", namespace=ns, q="redis")) == [
        f"{ns}/charts/redis", f"{ns}/charts/redis-cache", f"{ns}/charts/webapp", f"{ns}/images/redis-exporter"]
    by_update = _names(stack.get("/api/v1/repositories", namespace=ns, sort="-updated"))
    assert by_update[0] == f"{ns}/images/nginx" and len(by_update) == 5

    paged, cursor = [], None
    while True:
        body = stack.get("/api/v1/repositories", namespace=ns, sort="-updated", limit=2,
                         **({"cursor": cursor} if cursor else {})).json()
        paged += [r["name"] for r in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert paged == by_update


def test_an_organization_filter_holds_its_subtree_and_nothing_beside_it(stack):
    """A top-level namespace is read from the organization indexes (migration 0021), a deeper one from the namespace
    tree index: both hold what lies below the namespace, not the repository of the same name nor a neighbour whose
    name begins the same ('-' and '.' sort before '/', '0' after it)."""
    org = f"org{uuid.uuid4().hex[:6]}"
    inside = [f"{org}/zeta", f"{org}/team/beta", f"{org}/team.x/alpha", f"{org}/team/deep/gamma"]
    charts = [f"{org}/team/chart-b", f"{org}/chart-a"]
    beside = [org, f"{org}-x/delta", f"{org}.y/epsilon", f"{org}0/eta", f"{org}x/team/theta"]
    for name in inside + beside:
        push_image(stack.registry.url, name, "v1", seed=name)
    for name in charts + [f"{org}-x/chart-c"]:
        push_chart(stack.registry.url, name, "1.0.0", "1.0.0", description="organization filter")
    wait_until(lambda: all(stack.tags(name) for name in inside + beside + charts + [f"{org}-x/chart-c"]), timeout=60,
               what="the organization's repositories")

    # pushed one after another: the last pushed is the last updated
    assert _names(stack.get("/api/v1/repositories", namespace=org, limit=100)) == sorted(inside + charts)
    assert _names(stack.get("/api/v1/repositories", namespace=org, sort="-updated", limit=100)) == (
        list(reversed(inside + charts)))
    assert _names(stack.get("/api/v1/repositories", namespace=f"{org}/team", limit=100)) == sorted(
        [f"{org}/team/beta", f"{org}/team/chart-b", f"{org}/team/deep/gamma"])
    listed = stack.get("/api/v1/charts", namespace=org, limit=100).json()["items"]
    assert [chart["repository"] for chart in listed] == sorted(charts)
    hits = stack.get("/api/v1/search", q="organization filter", namespace=org).json()["items"]
    assert sorted(hit["name"] for hit in hits) == sorted(charts)


def test_repository_detail(stack, catalog):
    detail = stack.get(f"/api/v1/repositories/{catalog}/images/nginx").json()
    assert detail["tag_count"] == 2 and detail["kinds"] == ["image"] and detail["size_bytes"] > 0
    assert detail["updated_at"] and detail["last_pushed_at"]
    assert stack.get(f"/api/v1/repositories/{catalog}/images/nope").status_code == 404


def test_tag_filters_and_sorts(stack, catalog):
    path = f"/api/v1/repositories/{catalog}/charts/redis-cache/-/tags"
    assert _names(stack.get(path, name="1.")) == ["1.0.0", "1.10.0", "1.2.0", "1.9.0"]
    assert _names(stack.get(path, kind="image")) == []
    by_push = _names(stack.get(path, sort="-pushed"))
    assert by_push[0] == "1.9.0" and by_push[-1] == "1.0.0"
    second = stack.get(path, sort="-pushed", limit=3)
    assert _names(stack.get(path, sort="-pushed", limit=3, cursor=second.json()["next_cursor"])) == by_push[3:6]


def test_chart_versions_in_semver_order_and_charts_show_the_latest(stack, catalog):
    listed = stack.get(f"/api/v1/charts/{catalog}/charts/redis-cache/-/versions").json()["items"]
    assert [i["version"] for i in listed] == [
        "1.10.0", "1.9.0", "1.2.0", "1.0.0", "2.0.0-rc.1", "2.0.0-beta.2", "not-semver"]
    paged = stack.get(f"/api/v1/charts/{catalog}/charts/redis-cache/-/versions", limit=4).json()
    rest = stack.get(f"/api/v1/charts/{catalog}/charts/redis-cache/-/versions", limit=4,
                     cursor=paged["next_cursor"]).json()
    assert [i["version"] for i in paged["items"] + rest["items"]][4:] == ["2.0.0-rc.1", "2.0.0-beta.2", "not-semver"]

    charts = stack.get("/api/v1/charts", namespace=catalog).json()["items"]
    assert [(c["repository"], c["version"]) for c in charts] == [
        (f"{catalog}/charts/redis", "17.3.0"), (f"{catalog}/charts/redis-cache", "1.10.0"),
        (f"{catalog}/charts/webapp", "0.1.0")]
    assert charts[1]["keywords"] == ["cache", "database"]
    assert [c["repository"] for c in stack.get("/api/v1/charts", namespace=catalog, q="sessions").json()["items"]] == [
        f"{catalog}/charts/redis-cache"]
    assert stack.get(f"/api/v1/charts/{catalog}/images/nope/-/versions").status_code == 404


def test_search_ranks_exact_names_first_matches_prefixes_and_counts_facets(stack, catalog):
    body = stack.get("/api/v1/search", q="redis", namespace=catalog).json()
    names = [hit["name"] for hit in body["items"]]
    assert names[0] == f"{catalog}/charts/redis"  # exact last path component
    assert set(names) == {f"{catalog}/charts/redis", f"{catalog}/charts/redis-cache", f"{catalog}/charts/webapp",
                          f"{catalog}/images/redis-exporter"}
    assert names.index(f"{catalog}/charts/redis-cache") < names.index(f"{catalog}/charts/webapp")  # name beats description
    assert {f["value"]: f["count"] for f in body["facets"]["kind"]} == {"helm-chart": 3, "image": 1}
    assert {f["value"]: f["count"] for f in body["facets"]["namespace"]} == {f"{catalog}/charts": 3,
                                                                             f"{catalog}/images": 1}
    assert body["total"] == {"count": 4, "estimate": False} and body["facets"]["estimate"] is False

    assert [h["name"] for h in stack.get("/api/v1/search", q="sess", namespace=catalog).json()["items"]] == [
        f"{catalog}/charts/redis-cache"]  # prefix of a description word
    assert [h["name"] for h in stack.get("/api/v1/search", q="zelda", namespace=catalog).json()["items"]] == [
        f"{catalog}/charts/webapp"]  # a maintainer
    only_images = stack.get("/api/v1/search", q="redis", namespace=catalog, kind="image").json()
    assert [h["name"] for h in only_images["items"]] == [f"{catalog}/images/redis-exporter"]
    assert {f["value"] for f in only_images["facets"]["kind"]} == {"helm-chart", "image"}  # its own filter ignored

    first = stack.get("/api/v1/search", q="redis", namespace=catalog, limit=2).json()
    second = stack.get("/api/v1/search", q="redis", namespace=catalog, limit=2, cursor=first["next_cursor"]).json()
    assert [h["name"] for h in first["items"] + second["items"]] == names


@pytest.mark.parametrize("path, params", [
    ("/api/v1/search", {}),
    ("/api/v1/search", {"q": ""}),
    ("/api/v1/search", {"q": "x" * 201}),
    ("/api/v1/search", {"q": "redis", "kind": "banana"}),
    ("/api/v1/repositories", {"sort": "size"}),
    ("/api/v1/repositories", {"sort": "-updated", "cursor": base64.urlsafe_b64encode(
        json.dumps(["yesterday", "x"]).encode()).decode()}),
    ("/api/v1/search", {"q": "a", "cursor": base64.urlsafe_b64encode(json.dumps(["1", "NaN", "2026-01-01T00:00:00+00:00",
                                                                                  "x"]).encode()).decode()}),
    ("/api/v1/charts", {"q": "a\x00"}),
])
def test_bad_browse_parameters_get_400(stack, path, params):
    response = stack.get(path, **params)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"


def test_search_text_is_data_not_syntax(stack, catalog):
    """Operators of tsquery, SQL and regular expressions are only punctuation: the hits are those of the words
    (in their own order: an exact name match ranks first, and "redis:*" names no repository exactly)."""
    def names(q):
        response = stack.get("/api/v1/search", q=q, namespace=catalog)
        assert response.status_code == 200, (q, response.text)
        return [hit["name"] for hit in response.json()["items"]]

    for q in ["redis & !cache", "redis:*", "(redis", "redis\\", "redis|cache", "<->redis", "redis'; DROP TABLE x; --"]:
        words = " ".join(re.findall(r"\w+", q))
        assert sorted(names(q)) == sorted(names(words)), q
    assert names("redis") and names("'; DROP TABLE repositories; --") == [] and names("(") == []
    assert stack.get("/api/v1/repositories", namespace=catalog).json()["items"]


def test_paging_while_pushes_arrive_has_no_gaps_or_repeats(stack):
    ns = f"live{uuid.uuid4().hex[:6]}"
    originals = [f"{ns}/r{i:02d}" for i in range(0, 30, 2)]  # r00, r02, ... r28
    for name in originals:
        push_image(stack.registry.url, name, "v1", seed=name)
    wait_until(lambda: len(stack.get("/api/v1/repositories", namespace=ns, limit=200).json()["items"]) == 15,
               timeout=60, what="the originals")

    seen, cursor, newcomer = [], None, 1
    while True:
        body = stack.get("/api/v1/repositories", namespace=ns, limit=4, **({"cursor": cursor} if cursor else {})).json()
        seen += [r["name"] for r in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
        # Between pages, new repositories land before and after the cursor.
        for name in (f"{ns}/r{newcomer:02d}", f"{ns}/r{newcomer + 20:02d}"):
            push_image(stack.registry.url, name, "v1", seed=name)
            wait_until(lambda: stack.tags(name), timeout=60, what=name)
        newcomer += 2
    assert len(seen) == len(set(seen)), "a repository was listed twice"
    assert [name for name in seen if name in originals] == originals, "an original repository was skipped"
    assert seen == sorted(seen)


def test_search_tolerates_typos_when_nothing_matches(stack, catalog):
    """pg_trgm (installed here): no text matches "ngnix", so names with a similar word are the hits."""
    ns = catalog
    exact = stack.get("/api/v1/search", q="nginx", namespace=ns).json()
    assert exact["similar"] is False and [h["name"] for h in exact["items"]] == [f"{ns}/images/nginx"]
    typo = stack.get("/api/v1/search", q="ngnix", namespace=ns).json()
    assert typo["similar"] is True
    assert [h["name"] for h in typo["items"]][0] == f"{ns}/images/nginx"
    assert typo["facets"]["kind"] == [{"value": "image", "count": len(typo["items"])}]
    assert stack.get("/api/v1/search", q="qqqzzzxxx", namespace=ns).json() == {
        "items": [], "next_cursor": None, "facets": {"kind": [], "namespace": [], "estimate": False},
        "total": {"count": 0, "estimate": False}, "similar": True}


def test_a_chart_by_digest_is_cacheable_and_the_version_detail_revalidates(stack, catalog):
    by_version = stack.get(f"/api/v1/charts/{catalog}/charts/redis/-/versions/17.3.0")
    assert by_version.headers["Cache-Control"] == "no-cache" and "Authorization" in by_version.headers["Vary"]
    digest = by_version.json()["digest"]
    by_digest = stack.get(f"/api/v1/charts/{catalog}/charts/redis/-/digests/{digest}")
    assert by_digest.status_code == 200 and by_digest.json() == by_version.json()
    assert by_digest.headers["Cache-Control"] == "private, max-age=86400" and by_digest.headers["ETag"]
    missing = stack.get(f"/api/v1/charts/{catalog}/charts/redis/-/digests/sha256:{'0' * 64}")
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
    assert "has no digest" in missing.json()["detail"]
    assert stack.get(f"/api/v1/charts/{catalog}/charts/redis/-/digests/latest").status_code == 404
