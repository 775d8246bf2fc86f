"""The user's path: helm push to a real registry, the registry notifies a real ocicat, the API shows the chart."""

from __future__ import annotations

import uuid

import requests

from harness.helm import helm_push, make_chart
from harness.oci import push_image
from harness.processes import wait_until


def test_helm_push_with_build_metadata_appears_then_delete_removes_it(stack, tmp_path):
    namespace = f"team-{uuid.uuid4().hex[:8]}/charts"
    archive = make_chart(
        tmp_path, "webapp", "1.2.3+build.4", app_version="2.0.1", description="Web application",
        keywords=["web", "demo"], home="https://example.com/webapp",
        maintainers=[{"name": "Jane Doe", "email": "jane@example.com"}],
        annotations={"category": "Demo"}, kubeVersion=">=1.25.0-0", sources=["https://github.com/example/webapp"],
    )
    repository = f"{namespace}/webapp"

    helm_push(archive, stack.registry, namespace)
    tags = wait_until(lambda: stack.tags(repository), timeout=60, what="the chart in the tags API")

    assert list(tags) == ["1.2.3_build.4"]  # Helm writes + as _ in tags
    tag = tags["1.2.3_build.4"]
    assert tag["kind"] == "helm-chart"
    assert tag["chart"] == {"name": "webapp", "version": "1.2.3+build.4", "app_version": "2.0.1",
                            "description": "Web application"}
    assert tag["digest"].startswith("sha256:") and tag["size_bytes"] > 0 and tag["pushed_at"]

    detail = stack.get(f"/api/v1/charts/{repository}/-/versions/1.2.3+build.4")
    assert detail.status_code == 200
    chart = detail.json()
    assert chart["reference"] == f"oci://{stack.registry.host}/{repository}:1.2.3+build.4"
    assert chart["api_version"] == "v2" and chart["type"] == "application"
    assert chart["keywords"] == ["web", "demo"]
    assert chart["home"] == "https://example.com/webapp"
    assert chart["maintainers"] == [{"name": "Jane Doe", "email": "jane@example.com"}]
    assert chart["annotations"] == {"category": "Demo"}
    assert chart["kube_version"] == ">=1.25.0-0"
    assert chart["sources"] == ["https://github.com/example/webapp"]
    assert chart["digest"] == tag["digest"]

    listing = stack.get("/api/v1/repositories", namespace=namespace.split("/")[0]).json()["items"]
    assert [r["name"] for r in listing] == [repository]
    assert listing[0]["kinds"] == ["helm-chart"] and listing[0]["tag_count"] == 1

    deleted = requests.delete(f"{stack.registry.url}/v2/{repository}/manifests/{tag['digest']}", timeout=10)
    assert deleted.status_code == 202
    wait_until(lambda: stack.get(f"/api/v1/repositories/{repository}/-/tags").status_code == 404, timeout=60,
               what="the deleted chart to disappear")
    assert stack.get(f"/api/v1/charts/{repository}/-/versions/1.2.3+build.4").status_code == 404


def test_image_and_index_are_classified(stack):
    repository = f"apps-{uuid.uuid4().hex[:8]}/api"
    digest = push_image(stack.registry.url, repository, "v1")
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    }
    requests.put(f"{stack.registry.url}/v2/{repository}/manifests/multi", json=index,
                 headers={"Content-Type": index["mediaType"]}, timeout=10).raise_for_status()

    tags = wait_until(lambda: len(stack.tags(repository)) == 2 and stack.tags(repository), timeout=60,
                      what="image and index")
    assert {name: t["kind"] for name, t in tags.items()} == {"multi": "index", "v1": "image"}
    assert all(t["chart"] is None for t in tags.values())


def test_health_and_readiness(stack):
    assert stack.get("/healthz").json() == {"status": "ok"}
    assert stack.get("/readyz").json() == {"status": "ready"}
