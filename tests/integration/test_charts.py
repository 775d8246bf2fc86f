"""Helm charts pushed with real Helm: contents parsed once at ingest, shown by the chart version API.

Hostile chart layers (pushed as Helm would lay them out, with malicious archives)
become a recorded error on their manifest, and the worker goes on.
"""

from __future__ import annotations

import gzip
import json
import tarfile
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import yaml

from harness.chart_archives import CHART_YAML, chart_tgz, entry, many_files_bomb, one_file_bomb, tgz, tiny_files_tar
from harness.events import fresh_push_event
from harness.helm import helm_push, make_chart
from harness.oci import push_artifact, push_chart
from harness.processes import wait_until
from indexer import backfill
from indexer.bus import PostgresQueue
from indexer.indexing import EventIndexer
from indexer.readme import MAX_README_CHARS
from indexer.registry import RegistryClient
from ocicat.events import Event

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
PROVENANCE = "application/vnd.cncf.helm.chart.provenance.v1.prov"

CHANGES = """
- kind: added
  description: Support for ingress classes
  links:
    - name: PR
      url: https://github.com/example/webapp/pull/1
- Plain change line
"""


def test_chart_contents_from_a_real_helm_push(stack, tmp_path):
    namespace = f"contents-{uuid.uuid4().hex[:8]}"
    archive = make_chart(
        tmp_path, "webapp", "2.0.0-rc.1", app_version="3.1.0", description="Web app",
        annotations={"artifacthub.io/changes": CHANGES, "artifacthub.io/license": "Apache-2.0",
                     "artifacthub.io/prerelease": "true", "artifacthub.io/containsSecurityUpdates": "false",
                     "artifacthub.io/images": "- name: web\n  image: ghcr.io/example/web:3.1.0\n",
                     "artifacthub.io/links": "- name: docs\n  url: https://docs.example\n",
                     "artifacthub.io/maintainers": "- name: Ops\n  email: ops@example.com\n"},
    )
    # Add a README, a schema and a CRD to the chart Helm scaffolded, then package it again with Helm.
    import helm_python as helm

    chart_dir = Path(str(archive).rsplit("/", 1)[0]) / "webapp"
    (chart_dir / "README.md").write_text("# webapp\n\nInstall it.\n")
    (chart_dir / "values.schema.json").write_text(json.dumps({"type": "object", "properties": {"replicaCount": {"type": "integer"}}}))
    (chart_dir / "crds").mkdir()
    (chart_dir / "crds" / "widgets.yaml").write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n")
    archive = Path(helm.package(chart_dir, destination=tmp_path, version="2.0.0-rc.1"))
    helm_push(archive, stack.registry, namespace)

    repository = f"{namespace}/webapp"
    wait_until(lambda: stack.tags(repository), timeout=60, what="the chart")
    chart = stack.get(f"/api/v1/charts/{repository}/-/versions/2.0.0-rc.1").json()
    assert chart["error"] is None
    assert chart["readme"] == "# webapp\n\nInstall it.\n"
    assert chart["readme_html"] == "<h1>webapp</h1>\n<p>Install it.</p>\n"
    assert "replicaCount: 1" in chart["values"]
    assert chart["values_schema"]["properties"]["replicaCount"] == {"type": "integer"}
    assert "templates/deployment.yaml" in chart["templates"] and "templates/_helpers.tpl" in chart["templates"]
    assert chart["crds"] == ["crds/widgets.yaml"]
    assert chart["has_provenance"] is False
    assert chart["artifacthub"] == {
        "changes": [{"kind": "added", "description": "Support for ingress classes",
                     "links": [{"name": "PR", "url": "https://github.com/example/webapp/pull/1"}]},
                    {"kind": "changed", "description": "Plain change line", "links": []}],
        "images": [{"name": "web", "image": "ghcr.io/example/web:3.1.0"}],
        "links": [{"name": "docs", "url": "https://docs.example"}],
        "maintainers": [{"name": "Ops", "email": "ops@example.com"}],
        "prerelease": True, "contains_security_updates": False, "license": "Apache-2.0",
    }


def _push_raw_chart(stack, repository: str, version: str, layer: bytes, extra_layers=(), config: bytes | None = None):
    config = config if config is not None else json.dumps({"apiVersion": "v1", "name": repository.rsplit("/", 1)[1],
                                                           "version": version}).encode()
    return push_artifact(stack.registry.url, repository, version, config=(HELM_CONFIG, config), media_type=None,
                         layers=[(CHART_LAYER, layer), *extra_layers])


def test_v1_chart_dependencies_lock_and_provenance(stack):
    repository = f"v1-{uuid.uuid4().hex[:8]}/legacy"
    requirements = yaml.safe_dump({"dependencies": [{"name": "redis", "version": "17.x.x",
                                                     "repository": "https://charts.example"}]}).encode()
    lock = yaml.safe_dump({"dependencies": [{"name": "redis", "version": "17.3.1"}], "digest": "sha256:abc"}).encode()
    layer = chart_tgz({"Chart.yaml": "apiVersion: v1\nname: legacy\nversion: 1.0.0\n", "requirements.yaml": requirements,
                       "Chart.lock": lock}, top="legacy")
    _push_raw_chart(stack, repository, "1.0.0", layer, extra_layers=[(PROVENANCE, b"-----BEGIN PGP SIGNED MESSAGE-----")])
    wait_until(lambda: stack.tags(repository), timeout=60, what="the v1 chart")
    chart = stack.get(f"/api/v1/charts/{repository}/-/versions/1.0.0").json()
    assert chart["dependencies"] == [{"name": "redis", "version": "17.x.x", "repository": "https://charts.example"}]
    assert chart["chart_lock"]["dependencies"] == [{"name": "redis", "version": "17.3.1"}]
    assert chart["has_provenance"] is True


HOSTILE = {
    "gzip-bomb": (one_file_bomb, "limit"),  # 1 GiB of zeros in one values.yaml, about 1 MiB compressed
    "many-file-bomb": (lambda: many_files_bomb(25), "100 MiB"),
    "dot-dot": (lambda: tgz([("evil/Chart.yaml", CHART_YAML), ("evil/../../escaped.yaml", "x: 1")]), ".."),
    "absolute": (lambda: tgz([("/etc/evil/Chart.yaml", CHART_YAML)]), "absolute"),
    "symlink": (lambda: tgz([("evil/Chart.yaml", CHART_YAML),
                             (entry("evil/values.yaml", tarfile.SYMTYPE, linkname="/etc/passwd"), None)]), "link"),
    "device": (lambda: tgz([("evil/Chart.yaml", CHART_YAML), (entry("evil/dev", tarfile.CHRTYPE), None)]), "device"),
    "100k-files": (lambda: gzip.compress(tiny_files_tar(100_000)), "entries"),
    "six-mib-values": (lambda: chart_tgz({"Chart.yaml": CHART_YAML, "values.yaml": "a" * (6 * 1024 * 1024)}), "5"),
    "invalid-yaml": (lambda: chart_tgz({"Chart.yaml": "name: [unclosed\n"}), "YAML"),
    "not-gzip": (lambda: b"PK\x03\x04 this is a zip", "gzip"),
}


def test_hostile_chart_layers_are_recorded_errors_and_the_worker_goes_on(stack):
    namespace = f"hostile-{uuid.uuid4().hex[:8]}"
    for name, (build, reason) in HOSTILE.items():
        _push_raw_chart(stack, f"{namespace}/{name}", "1.0.0", build())
    bad_config = f"{namespace}/bad-config"
    push_artifact(stack.registry.url, bad_config, "1.0.0", config=(HELM_CONFIG, b"{not json"), media_type=None,
                  layers=[(CHART_LAYER, chart_tgz({"Chart.yaml": CHART_YAML}))])
    good = f"{namespace}/good"
    push_chart(stack.registry.url, good, "1.0.0", "1.0.0", description="after the storm")

    wait_until(lambda: stack.tags(good), timeout=60, what="the good chart after the hostile ones")
    for name, (_, reason) in HOSTILE.items():
        tag = wait_until(lambda: stack.tags(f"{namespace}/{name}").get("1.0.0"), timeout=60, what=name)
        assert tag["error"] and reason.lower() in tag["error"].lower(), (name, tag["error"])
        assert tag["chart"]["name"] == name.split("/")[-1]  # the config's metadata is kept beside the error
    assert "not JSON" in stack.tags(bad_config)["1.0.0"]["error"]
    assert stack.tags(good)["1.0.0"]["error"] is None
    assert stack.server.process.poll() is None and stack.get("/healthz").status_code == 200


def test_the_readme_is_made_safe_html_once_when_indexed_and_a_hostile_one_stays_text(stack):
    """Sanitizing 256 KiB of <div> cost the API 8.5 s of CPU on a read; now the worker renders a README once,
    within limits that keep the worst case to milliseconds, and a read only reads the column."""
    namespace = f"readme-{uuid.uuid4().hex[:8]}"
    hostile = "<div>" * (60 * 1024 // 5)
    readmes = {"plain": "# Plain\n\nSome **text**.\n", "deep": hostile, "large": "x" * (MAX_README_CHARS + 1)}
    for name, readme in readmes.items():
        _push_raw_chart(stack, f"{namespace}/{name}", "1.0.0", chart_tgz(
            {"Chart.yaml": f"apiVersion: v1\nname: {name}\nversion: 1.0.0\n", "README.md": readme}, top=name))
    for name, readme in readmes.items():
        wait_until(lambda: stack.tags(f"{namespace}/{name}"), timeout=60, what=name)
        chart = stack.get(f"/api/v1/charts/{namespace}/{name}/-/versions/1.0.0").json()
        assert chart["readme"] == readme and chart["error"] is None
        if name == "plain":
            assert chart["readme_html"] == "<h1>Plain</h1>\n<p>Some <strong>text</strong>.</p>\n"
        else:
            assert chart["readme_html"] is None  # shown as text


def test_what_charts_indexed_by_an_older_ocicat_lack_is_written_by_the_workers(db, registry):
    """Charts indexed by an older ocicat have a README and no HTML, no Helm index entry and no upgrade report: a
    worker writes them, once, in the background."""
    repository = f"backfill-{uuid.uuid4().hex[:8]}/chart"
    queue = PostgresQueue(db)
    for version, replicas in (("1.0.0", 1), ("1.1.0", 2)):
        digest = _push_raw_chart(SimpleNamespace(registry=registry), repository, version, chart_tgz(
            {"Chart.yaml": f"apiVersion: v1\nname: chart\nversion: {version}\n", "README.md": "# Before\n",
             "values.yaml": f"replicas: {replicas}\n"}, top="chart"))
        queue.publish([Event.load(fresh_push_event(repository, digest, version))], [])
        assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    with db.transaction() as cur:
        cur.execute("SELECT version, index_entry, upgrade_report FROM helm_charts ORDER BY version")
        written = cur.fetchall()
        # as migrations 0010, 0014 and 0015 found them
        cur.execute("UPDATE helm_charts SET readme_html = NULL, index_entry = NULL, upgrade_report = NULL,"
                    " upgrade_reported = false RETURNING 1")
        assert cur.fetchall()
    assert written[1]["upgrade_report"]["items"][0]["path"] == "replicas"
    done = {"readmes": 2, "index entries": 2, "upgrade reports": 2, "unlisted contents": 0}
    assert backfill.run(db, threading.Event()) == done
    assert backfill.run(db, threading.Event()) == dict.fromkeys(done, 0)  # once
    with db.transaction() as cur:
        cur.execute("SELECT readme_html, index_entry, upgrade_report FROM helm_charts ORDER BY version")
        rows = cur.fetchall()
    assert [row["readme_html"] for row in rows] == ["<h1>Before</h1>\n"] * 2
    assert [(row["index_entry"], row["upgrade_report"]) for row in rows] == [
        (w["index_entry"], w["upgrade_report"]) for w in written]


def test_template_contents_no_version_lists_are_removed_when_a_worker_starts(db, registry):
    repository = f"unlisted-{uuid.uuid4().hex[:8]}/chart"
    queue = PostgresQueue(db)
    for version in ("1.0.0", "1.1.0"):
        digest = _push_raw_chart(SimpleNamespace(registry=registry), repository, version, chart_tgz(
            {"Chart.yaml": f"apiVersion: v2\nname: chart\nversion: {version}\n", "templates/shared.yaml": "kind: A\n",
             "templates/own.yaml": f"# {version}\n",
             "crds/thing.yaml": f"kind: CustomResourceDefinition # {version}\n"},
            top="chart"))
        queue.publish([Event.load(fresh_push_event(repository, digest, version))], [])
        assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM chart_sources")
        assert cur.fetchone()["n"] == 5  # shared.yaml once, own.yaml and thing.yaml twice
        cur.execute("DELETE FROM manifests m USING helm_charts c WHERE c.manifest_id = m.id AND c.version = '1.0.0'")
    assert backfill.run(db, threading.Event())["unlisted contents"] == 2
    assert backfill.run(db, threading.Event())["unlisted contents"] == 0
    with db.transaction() as cur:
        cur.execute("SELECT s.content, s.document FROM chart_sources s ORDER BY s.content")
        assert [(r["content"], r["document"]) for r in cur.fetchall()] == [
            ("# 1.1.0\n", None), ("kind: A\n", None),
            ("kind: CustomResourceDefinition # 1.1.0\n", {"kind": "CustomResourceDefinition"})]
