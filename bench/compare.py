#!/usr/bin/env python
"""Comparing chart versions: the compare API and page for real-sized charts, the upgrade report's cost at ingest,
and what storing templates once per content saves.

    .venv/bin/python bench/compare.py [--versions N] [--requests N] [--page-loads N]
                                      [--storage-versions N] [--storage-templates N] [--impossible-targets]

A real registry notifies ``ocicat serve`` (its worker writes each version's upgrade report as it indexes it).

1. Real-sized charts: --versions versions of a chart the size of the large public ones (a 50 KB values.yaml of 90
   components with comments, a values schema of 450 properties, 60 templates, 2 CRDs of 40 KB, dependencies and
   images), each version changing what releases change: defaults, a key renamed or removed now and then, two
   templates, every fifth a CRD, the images, a dependency's major every tenth. Pushed as Helm lays charts out.
   - the report at ingest: the worker's own code (ocicat.catalog.upgrades.write_reports, in one transaction against
     the run's database, as the worker runs it) timed for every version: p95;
   - the compare API: --requests GETs of /api/v1/charts/<name>/-/compare for neighbouring versions and for the
     first against the last (every change of the whole history), p95;
   - the compare page: --page-loads first visits of the UI's compare page in headless Chromium, each in a fresh
     context (empty cache), until the page has rendered the diff (the UI's ``ocicat:rendered`` mark): p95. One visit
     before them warms the browser process up, and is not counted (a new Chromium's first page pays its start-up).
     And from each of those contexts, the way people arrive: the compare link in the chart page's version list,
     clicked, until the comparison is rendered (modules loaded: the API answer and the rendering).
2. Storage: --storage-versions versions of a chart with --storage-templates templates, each version changing two of
   them (the rest as before), indexed through the registry; then the tables holding template contents measured
   (chart_files and chart_sources, their indexes and TOAST included) against the same contents stored per version
   (a table of one row per version and file, built from them in the same database, compressed by PostgreSQL alike).

Targets: compare API p95 <= 100 ms, page p95 <= 300 ms, report at ingest p95 <= 50 ms, each distinct template stored
once. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import yaml  # noqa: E402

from bench.common import Run, add_run_arguments, percentile, print_header, run_bounded, scalar  # noqa: E402
from harness.browser import launch  # noqa: E402
from harness.oci import push_chart  # noqa: E402
from harness.processes import wait_until  # noqa: E402
from ocicat.catalog import upgrades  # noqa: E402
from ocicat.db import Database  # noqa: E402

API_TARGET_MS = 100.0
PAGE_TARGET_MS = 300.0
REPORT_TARGET_MS = 50.0
COMPONENTS = 90
TEMPLATES = 60
WORDS = ("replica", "service", "ingress", "volume", "probe", "secret", "config", "metrics", "affinity", "tolerate",
         "resources", "limits", "requests", "annotations", "labels", "selector", "container", "sidecar", "worker")

COMPONENT = """\
## @section {n} parameters
{n}:
  # -- whether {n} runs at all
  enabled: true
  # -- how many {n} pods
  replicaCount: {replicas}
  image:
    registry: registry.example
    repository: shop/{n}
    # -- overrides the chart's appVersion
    tag: "{tag}"
    pullPolicy: IfNotPresent
    pullSecrets: []
  # -- extra arguments for the {n} container
  args: ["--log-level=info", "--port=8080"]
  podAnnotations: {{}}
  resources:
    limits: {{}}
    requests:
      cpu: {cpu}m
      memory: 128Mi
  service:
    type: ClusterIP  # ClusterIP, NodePort or LoadBalancer
    ports:
      http: 80
    annotations: {{}}
  {ingress_key}:
    enabled: false
    hostname: {n}.local
    {class_key}: nginx  # the ingress class
    tls: false
    extraHosts: []
  livenessProbe:
    enabled: true
    initialDelaySeconds: 30
    periodSeconds: 10
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.shop.example
spec:
  group: shop.example
  names: {{kind: {kind}, plural: {plural}}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
{fields}
"""


def _words(seed: str, count: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(count))


def real_chart(i: int) -> tuple[dict, dict]:
    """Files and Chart.yaml fields of version ``i`` of a large chart, each version changing what releases change."""
    renamed = i // 10  # every tenth version renames another ingress.class to ingress.className
    values = "".join(COMPONENT.format(
        n=f"component{c}", replicas=1 + (c == i % COMPONENTS), tag=f"1.{i}.0",
        cpu=100 + 50 * (c == (i + 7) % COMPONENTS),
        ingress_key="ingress", class_key="className" if c < renamed else "class") for c in range(COMPONENTS)
        if not (c == COMPONENTS - 1 and i % 7 == 6))  # now and then a component is removed
    schema = {"type": "object", "properties": {
        f"component{c}": {"type": "object", "properties": {
            "enabled": {"type": "boolean", "description": f"whether component{c} runs"},
            "replicaCount": {"type": "integer", "minimum": 0},
            "image": {"type": "object", "properties": {"tag": {"type": "string"}, "pullPolicy": {
                "type": "string", "enum": ["Always", "IfNotPresent", "Never"]}}},
            "service": {"type": "object", "properties": {"type": {"type": "string", "enum": [
                "ClusterIP", "NodePort", "LoadBalancer"]}}}}} for c in range(COMPONENTS)}}
    files = {"values.yaml": values, "values.schema.json": json.dumps(schema)}
    for t in range(TEMPLATES):
        stamp = f"{i}" if t in (i % TEMPLATES, (i + 1) % TEMPLATES) else "0"
        body = "\n".join(f"  {w}: {{{{ .Values.component{t % COMPONENTS}.{w.split()[0]} | quote }}}}"
                         for w in _words(f"t{t}", 80).split())
        files[f"templates/t{t:02d}.yaml"] = (f"# template {t}, revision {stamp}\napiVersion: v1\nkind: ConfigMap\n"
                                             f"metadata:\n  name: t{t}\ndata:\n{body}\n")
    for k, (kind, plural) in enumerate((("Basket", "baskets"), ("Order", "orders"))):
        fields = "".join(f"            field{f}: {{type: {'string' if f == 0 and k == 0 and i // 5 % 2 else 'integer'},"
                         f" description: \"{_words(f'{k}{f}', 6)}\"}}\n" for f in range(400))
        files[f"crds/{plural}.yaml"] = CRD.format(kind=kind, plural=plural, fields=fields)
    fields = {
        "appVersion": f"1.{i}.0", "kubeVersion": ">=1.25.0-0", "description": "A large shop",
        "dependencies": [{"name": "redis", "version": f"{17 + i // 10}.1.0", "repository": "oci://registry.example/c"},
                         {"name": "postgresql", "version": "12.5.0", "repository": "oci://registry.example/c"}],
        "annotations": {"artifacthub.io/images": yaml.safe_dump(
            [{"name": f"component{c}", "image": f"registry.example/shop/component{c}:1.{i}.0"} for c in range(8)]),
            "artifacthub.io/changes": yaml.safe_dump([{"kind": "changed", "description": f"Release 1.{i}.0"}])},
    }
    return files, fields


def storage_chart(i: int, templates: int) -> dict:
    """Version ``i`` of a chart with ``templates`` templates, two of which change each version."""
    files = {}
    for t in range(templates):
        revision = i if t in (i % templates, (i + 1) % templates) else 0
        files[f"templates/t{t:03d}.yaml"] = (f"# template {t}, revision {revision}\n"
                                             + "\n".join(f"{w}: {{{{ .Values.x }}}}"
                                                         for w in _words(f"s{t}", 60).split())
                                             + "\n")
    return files


class Compare(Run):
    name = "compare"

    def push_versions(self, repository: str, versions: list[tuple[str, dict, dict]]) -> float:
        started = time.monotonic()
        for version, files, fields in versions:
            push_chart(self.registry.url, repository, version, version, session=self.push_http, files=files, **fields)
        wait_until(lambda: len(self.visible_tags(repository)) == len(versions), timeout=60 + 2 * len(versions),
                   what=f"{len(versions)} versions of {repository}")
        return time.monotonic() - started

    def real_sized(self) -> None:
        args = self.args
        repository = "bench/shop"
        versions = [(f"1.{i}.0", *real_chart(i)) for i in range(args.versions)]
        files, _ = real_chart(0)
        size = sum(len(text.encode()) for text in files.values())
        print(f"\n1. real-sized chart: {args.versions} versions, each {len(files)} files, {size / 1024:.0f} KiB "
              f"(values.yaml {len(files['values.yaml'].encode()) / 1024:.0f} KiB)")
        seconds = self.push_versions(repository, versions)
        print(f"  pushed and indexed in {seconds:.1f} s")

        db = Database(self.db_url, maxconn=2)
        report_ms = []
        with db.transaction() as cur:
            cur.execute("SELECT m.id, m.repository_id, c.version_key FROM manifests m"
                        " JOIN repositories r ON r.id = m.repository_id JOIN helm_charts c ON c.manifest_id = m.id"
                        " WHERE r.name = %s ORDER BY m.id", (repository,))
            ids = cur.fetchall()
        for row in ids:
            with db.transaction() as cur:
                started = time.perf_counter()
                upgrades.write_reports(cur, row["repository_id"], row["id"], row["version_key"])
                report_ms.append((time.perf_counter() - started) * 1000)
        db.close()
        listed = self.http.get(f"{self.api}/api/v1/charts/{repository}/-/versions", params={"limit": 500},
                               timeout=30).json()["items"]
        reports = [v["upgrade"] for v in listed if v["upgrade"]]
        print(f"  reports: {len(reports)}, {sum(r['changes'] for r in reports):,} changes and "
              f"{sum(r['breaking'] for r in reports)} breaking candidates in all")
        print(f"  report at ingest (n={len(report_ms)}): p50 {percentile(report_ms, 50):.1f} ms, "
              f"p95 {percentile(report_ms, 95):.1f} ms, max {max(report_ms):.1f} ms")

        pairs = [(versions[i][0], versions[i + 1][0]) for i in range(len(versions) - 1)]
        pairs.append((versions[0][0], versions[-1][0]))
        api_ms = []
        for n in range(args.requests):
            low, high = pairs[n % len(pairs)]
            started = time.perf_counter()
            response = self.http.get(f"{self.api}/api/v1/charts/{repository}/-/compare",
                                     params={"from": low, "to": high}, timeout=30)
            api_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"compare {low}..{high}: HTTP {response.status_code}: {response.text[:300]}")
        whole = self.http.get(f"{self.api}/api/v1/charts/{repository}/-/compare",
                              params={"from": versions[0][0], "to": versions[-1][0]}, timeout=30)
        body = whole.json()
        print(f"  compare API (n={len(api_ms)}, neighbours and first..last): p50 {percentile(api_ms, 50):.1f} ms, "
              f"p95 {percentile(api_ms, 95):.1f} ms; first..last: {len(whole.content) / 1024:.0f} KiB, "
              f"{len(body['values']['changed'])} changed defaults, {len(body['templates'])} templates, "
              f"{len(body['changelog'])} changelogs")

        listed = versions[max(0, len(versions) - 10)][0]
        page_ms, arrival_ms = self.page_loads(repository, versions[0][0], versions[-1][0], listed)
        print(f"  compare page, first visit (n={len(page_ms)}): p50 {percentile(page_ms, 50):.0f} ms, "
              f"p95 {percentile(page_ms, 95):.0f} ms")
        print(f"  compare page, {listed} to {versions[-1][0]} from the chart page's version list "
              f"(n={len(arrival_ms)}): "
              f"p50 {percentile(arrival_ms, 50):.0f} ms, p95 {percentile(arrival_ms, 95):.0f} ms")
        print("      " + self.targets.at_most(f"report at ingest p95 (n={len(report_ms)})", percentile(report_ms, 95),
                                              REPORT_TARGET_MS, " ms"))
        print("      " + self.targets.at_most(f"compare API p95 (n={len(api_ms)})", percentile(api_ms, 95),
                                              API_TARGET_MS, " ms"))
        print("      " + self.targets.at_most(f"compare page shows the diff, p95 (n={len(page_ms)})",
                                              percentile(page_ms, 95), PAGE_TARGET_MS, " ms", 0))

    def page_loads(self, repository: str, low: str, high: str, listed: str) -> tuple[list[float], list[float]]:
        """Times to the rendered comparison of ``low`` and ``high``: first visits of its URL; and arrivals at the
        comparison of ``listed`` (on the first page of the version list) and ``high`` from the chart page of ``high``
        (the modules loaded already: the API answer and the rendering)."""
        from playwright.sync_api import sync_playwright

        url = f"{self.api}/ui/charts/{repository}/-/compare?from={low}&to={high}"
        first, arrivals = [], []
        with sync_playwright() as playwright:
            browser = launch(playwright)
            for _ in range(1 + self.args.page_loads):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(url)
                page.locator("ol.upgrade-report").wait_for(timeout=30_000)
                first.append(page.evaluate("performance.getEntriesByName('ocicat:rendered')[0].startTime"))
                page.goto(f"{self.api}/ui/charts/{repository}/{high}")
                link = page.locator("#versions li").filter(
                    has=page.get_by_role("link", name=listed, exact=True)).get_by_role("link", name="compare")
                link.wait_for(timeout=30_000)
                started = page.evaluate("performance.now()")
                link.click()
                page.get_by_role("heading", level=1, name=f"{listed} → {high}").wait_for(timeout=30_000)
                arrivals.append(page.evaluate("performance.getEntriesByName('ocicat:rendered').at(-1).startTime")
                                - started)
                context.close()
            browser.close()
        return first[1:], arrivals[1:]

    def storage(self) -> None:
        args = self.args
        repository = "bench/many-templates"
        count, templates = args.storage_versions, args.storage_templates
        print(f"\n2. storage: {count} versions of a chart with {templates} templates, 2 changing each version")
        versions = [(f"0.{i}.0", {"values.yaml": "x: 1\n", **storage_chart(i, templates)}, {}) for i in range(count)]
        seconds = self.push_versions(repository, versions)
        print(f"  pushed and indexed in {seconds:.1f} s")
        conn = self.db()

        def execute(sql, params=()):
            with conn.cursor() as cur:
                cur.execute(sql, params)

        files = scalar(conn, "SELECT count(*) FROM chart_files f JOIN manifests m ON m.id = f.manifest_id"
                             " JOIN repositories r ON r.id = m.repository_id WHERE r.name = %s", (repository,))
        distinct = scalar(conn, "SELECT count(DISTINCT f.digest) FROM chart_files f"
                                " JOIN manifests m ON m.id = f.manifest_id"
                                " JOIN repositories r ON r.id = m.repository_id WHERE r.name = %s", (repository,))
        expected = len({hashlib.sha256(text.encode()).digest() for _, files_, _ in versions
                        for path, text in files_.items() if path.startswith("templates/")})
        # Only this repository's charts are measured: the real-sized chart's rows are moved aside first.
        execute("CREATE TABLE other_files AS SELECT f.* FROM chart_files f JOIN manifests m ON m.id = f.manifest_id"
                     " JOIN repositories r ON r.id = m.repository_id WHERE r.name <> %s", (repository,))
        execute("DELETE FROM chart_files f USING other_files o WHERE f.manifest_id = o.manifest_id")
        execute("DELETE FROM chart_sources s WHERE NOT EXISTS (SELECT 1 FROM chart_files f WHERE f.digest = s.digest)")
        execute("VACUUM FULL chart_files")
        execute("VACUUM FULL chart_sources")
        deduplicated = scalar(conn, "SELECT pg_total_relation_size('chart_files')"
                                    " + pg_total_relation_size('chart_sources')")
        execute("CREATE TABLE per_version AS SELECT f.manifest_id, f.path, f.size, f.truncated, s.content"
                     " FROM chart_files f JOIN chart_sources s ON s.digest = f.digest")
        execute("ALTER TABLE per_version ADD PRIMARY KEY (manifest_id, path)")
        undeduplicated = scalar(conn, "SELECT pg_total_relation_size('per_version')")
        raw = scalar(conn, "SELECT sum(octet_length(content)) FROM per_version")
        print(f"  {files:,} files listed, {distinct:,} distinct contents stored (expected {expected:,})")
        print(f"  template text per version: {raw / count / 1024:.0f} KiB")
        print(f"  stored once per content: {deduplicated / 1024 / 1024:.2f} MiB, "
              f"{deduplicated / count / 1024:.1f} KiB per version")
        print(f"  stored per version:      {undeduplicated / 1024 / 1024:.2f} MiB, "
              f"{undeduplicated / count / 1024:.1f} KiB per version ({undeduplicated / deduplicated:.1f}x)")
        print("      " + self.targets.holds(f"each distinct template stored once ({distinct:,} contents for "
                                            f"{files:,} files, {expected:,} distinct)",
                                            distinct == expected and files == count * templates))

    def run(self) -> None:
        self.setup()
        print_header("Compare", self.run_id, self.args.database_server)
        self.wait_api(self.start("serve"))
        self.real_sized()
        self.storage()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=30, help="versions of the real-sized chart (default 30)")
    parser.add_argument("--requests", type=int, default=200, help="compare API requests (default 200)")
    parser.add_argument("--page-loads", type=int, default=20, help="compare page first visits (default 20)")
    parser.add_argument("--storage-versions", type=int, default=500, help="versions for storage (default 500)")
    parser.add_argument("--storage-templates", type=int, default=200, help="templates per version (default 200)")
    add_run_arguments(parser, time_limit=1800)
    args = parser.parse_args()
    if args.versions < 2:
        parser.error("--versions must be at least 2")
    return run_bounded(Compare(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
