#!/usr/bin/env python
"""Helm repository benchmark: ``/helm/<namespace>/index.yaml`` for namespaces of 10,000 and 100,000 chart versions,
and chart archive downloads against fetching the same blob from the registry.

    .venv/bin/python bench/helmrepo.py [--versions 10000,100000] [--cold N] [--revalidations N] [--archive-mb N]
                                       [--impossible-targets]

``ocicat api`` (2 processes, as it runs by default) serves a catalog bulk-loaded in SQL: per namespace, charts of
100 versions each, every version with a realistic Chart.yaml (description, keywords, maintainers, sources, home,
icon, annotations, a dependency). Then, per namespace size:

1. Cold generation: before each request one repository of the namespace takes a new change number (as the worker
   does after an event), so the index is written anew from PostgreSQL: --cold requests, gzip accepted.
2. Revalidation: --revalidations requests with the ETag of the last answer (If-None-Match), one at a time: 304.
3. Cached: as many requests without the ETag while nothing changed: the gzipped index from the API's cache.
4. Bytes: the index on the wire (gzip) and unzipped.

Then --archive-mb of incompressible bytes are pushed to the registry as a chart layer (the catalog rows for it
loaded in SQL), and fetched 7 times alternately from the registry (GET /v2/<name>/blobs/<digest>) and from ocicat
(GET /helm/<namespace>/charts/<name>-<version>.tgz, streamed from the registry, digest verified): MB/s each.

Targets: 304 p95 <= 10 ms; cold generation of 10,000 versions p95 <= 500 ms; archive throughput >= 0.8x the
registry's. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import Run, add_run_arguments, percentile, print_header, run_bounded, scalar  # noqa: E402
from harness.oci import push_blob  # noqa: E402
from indexer.helm import version_order  # noqa: E402

REVALIDATE_TARGET_MS = 10.0
COLD_10K_TARGET_MS = 500.0
ARCHIVE_RATIO_TARGET = 0.8
VERSIONS_PER_CHART = 100
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

# One statement per table, the rows made by PostgreSQL; %(versions)s and %(keys)s are the 100 version strings of
# every chart and their sort keys (indexer.helm.version_order, as the worker stores them).
_LOAD = """
INSERT INTO repositories (name, namespace, created_at, updated_at)
SELECT %(namespace)s || '/chart-' || c, %(namespace)s, now(), now() FROM generate_series(1, %(charts)s) c;

CREATE TEMP TABLE plan ON COMMIT DROP AS
SELECT r.id AS repository_id, split_part(r.name, '/', -1) AS chart, v.version, v.key, v.prerelease, v.n
  FROM repositories r, unnest(%(versions)s::text[], %(keys)s::text[], %(prereleases)s::bool[])
                       WITH ORDINALITY AS v(version, key, prerelease, n)
 WHERE r.namespace = %(namespace)s;

INSERT INTO manifests (repository_id, digest, media_type, config_media_type, config_digest, kind, manifest_size,
                       size_bytes, content, pushed_at, indexed_at)
SELECT p.repository_id, 'sha256:' || encode(sha256((p.repository_id || ':' || p.version)::bytea), 'hex'),
       'application/vnd.oci.image.manifest.v1+json', 'application/vnd.cncf.helm.config.v1+json',
       'sha256:' || encode(sha256(('config:' || p.repository_id || ':' || p.version)::bytea), 'hex'), 'helm-chart',
       600, 40000, '{}', now() - (100 - p.n) * interval '1 hour', now()
  FROM plan p;

INSERT INTO layers (manifest_id, position, media_type, digest, size_bytes)
SELECT m.id, 0, %(layer)s, 'sha256:' || encode(sha256(('layer:' || m.digest)::bytea), 'hex'), 39000
  FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.namespace = %(namespace)s;

INSERT INTO helm_charts (manifest_id, api_version, name, version, kube_version, description, type, keywords, home,
                         sources, dependencies, maintainers, icon, app_version, annotations, prerelease, version_key)
SELECT m.id, 'v2', p.chart, p.version, '>=1.25.0-0',
       'The ' || p.chart || ' service: a web application with its worker, its ingress and a sensible default config',
       'application', '["web", "service", "platform"]', 'https://example.com/' || p.chart,
       jsonb_build_array('https://github.com/example/' || p.chart),
       '[{"name": "redis", "version": "17.x.x", "repository": "oci://registry.example/charts", "condition": "redis.enabled"}]',
       '[{"name": "Platform team", "email": "platform@example.com", "url": "https://example.com/platform"}]',
       'https://example.com/' || p.chart || '/icon.svg', '2.' || p.n || '.0',
       jsonb_build_object('category', 'Web', 'artifacthub.io/license', 'Apache-2.0'), p.prerelease, p.key
  FROM plan p JOIN manifests m ON m.repository_id = p.repository_id
   AND m.digest = 'sha256:' || encode(sha256((p.repository_id || ':' || p.version)::bytea), 'hex');

UPDATE helm_charts c SET index_entry = helm_index_entry(c) WHERE index_entry IS NULL;  -- as the worker does

INSERT INTO tags (repository_id, name, digest, event_at)
SELECT p.repository_id, p.version, 'sha256:' || encode(sha256((p.repository_id || ':' || p.version)::bytea), 'hex'), now()
  FROM plan p;

UPDATE repositories r SET manifest_count = %(per_chart)s, tag_count = %(per_chart)s, kinds = '{helm-chart}',
       change_serial = nextval('repository_changes'),
       latest_chart_id = (SELECT m.id FROM manifests m JOIN helm_charts c ON c.manifest_id = m.id
                           WHERE m.repository_id = r.id ORDER BY c.version_key DESC LIMIT 1)
 WHERE r.namespace = %(namespace)s;
"""


def _versions() -> tuple[list[str], list[str], list[bool]]:
    """Every chart's 100 versions: releases with a prerelease before each tenth (as charts are released)."""
    versions = []
    for n in range(VERSIONS_PER_CHART):
        major, minor = divmod(n, 10)
        versions.append(f"{major + 1}.{minor}.0-rc.1" if minor == 9 else f"{major + 1}.{minor}.0")
    orders = [version_order(v) for v in versions]
    return versions, [key for _, key in orders], [pre for pre, _ in orders]


class HelmRepo(Run):
    name = "helmrepo"

    def load(self, namespace: str, versions: int) -> None:
        names, keys, prereleases = _versions()
        started = time.monotonic()
        conn = self.db()
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute(_LOAD, {"namespace": namespace, "charts": versions // VERSIONS_PER_CHART, "versions": names,
                                "keys": keys, "prereleases": prereleases, "layer": HELM_LAYER,
                                "per_chart": VERSIONS_PER_CHART})
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        print(f"  loaded {versions:,} chart versions in {namespace} ({versions // VERSIONS_PER_CHART:,} charts) "
              f"in {time.monotonic() - started:.1f} s")

    def get(self, path: str, **headers):
        started = time.perf_counter()
        response = self.http.get(f"{self.api}{path}", headers=headers, timeout=120, stream=True)
        body = response.raw.read()  # as sent: gzipped
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code not in (200, 304):
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}: {body[:300]!r}")
        return response, body, elapsed

    def index(self, namespace: str, versions: int, cold_runs: int, revalidations: int) -> None:
        path = f"/helm/{namespace}/index.yaml"
        gzip_ok = {"Accept-Encoding": "gzip"}
        print(f"\n{versions:,} versions: GET {path}")
        cold = []
        for _ in range(cold_runs):
            self.db().cursor().execute(
                "UPDATE repositories SET change_serial = nextval('repository_changes')"
                " WHERE id = (SELECT min(id) FROM repositories WHERE namespace = %s)", (namespace,))
            response, body, elapsed = self.get(path, **gzip_ok)
            cold.append(elapsed)
        listed = sum(len(v) for v in json.loads(gzip.decompress(body))["entries"].values())
        if listed != versions:
            raise RuntimeError(f"the index lists {listed:,} versions, not {versions:,}")
        etag = response.headers["ETag"]
        revalidated = []
        for _ in range(revalidations):
            response, _, elapsed = self.get(path, **gzip_ok, **{"If-None-Match": etag})
            if response.status_code != 304:
                raise RuntimeError(f"revalidation answered {response.status_code}")
            revalidated.append(elapsed)
        cached = [self.get(path, **gzip_ok)[2] for _ in range(max(10, revalidations // 10))]
        plain = self.http.get(f"{self.api}{path}", headers={"Accept-Encoding": "identity"}, timeout=120)
        print(f"  cold generation (n={len(cold)}):   p50 {percentile(cold, 50):8.1f} ms   p95 {percentile(cold, 95):8.1f} ms")
        print(f"  revalidated 304 (n={len(revalidated)}): p50 {percentile(revalidated, 50):8.2f} ms   "
              f"p95 {percentile(revalidated, 95):8.2f} ms")
        print(f"  cached 200 (n={len(cached)}):       p50 {percentile(cached, 50):8.1f} ms   p95 {percentile(cached, 95):8.1f} ms")
        print(f"  bytes on the wire: {len(body):,} gzipped, {len(plain.content):,} unzipped "
              f"({len(plain.content) / len(body):.1f}x)")
        print("      " + self.targets.at_most(f"{versions:,} versions: 304 p95 (n={len(revalidated)})",
                                              percentile(revalidated, 95), REVALIDATE_TARGET_MS, " ms", 2))
        if versions == 10_000:
            print("      " + self.targets.at_most(f"10,000 versions: cold generation p95 (n={len(cold)})",
                                                  percentile(cold, 95), COLD_10K_TARGET_MS, " ms"))

    def archive(self, megabytes: int) -> None:
        namespace, repository = "bench-archive", "bench-archive/big"
        data = os.urandom(megabytes * 1024 * 1024)  # incompressible, like a chart full of images' worth of CRDs
        digest = push_blob(self.registry.url, repository, data, session=self.push_http)
        self.load(namespace, VERSIONS_PER_CHART)  # chart-1 with 100 versions; its newest gets the real blob
        self.db().cursor().execute(
            "UPDATE layers l SET digest = %s, size_bytes = %s FROM manifests m, repositories r, helm_charts c"
            " WHERE l.manifest_id = m.id AND m.repository_id = r.id AND c.manifest_id = m.id"
            " AND r.name = 'bench-archive/chart-1' AND c.version = '10.8.0'", (digest, len(data)))
        self.db().cursor().execute("UPDATE repositories SET name = %s WHERE name = 'bench-archive/chart-1'",
                                   (repository,))
        self.db().cursor().execute("UPDATE helm_charts c SET name = 'big' FROM manifests m, repositories r"
                                   " WHERE c.manifest_id = m.id AND m.repository_id = r.id AND r.name = %s",
                                   (repository,))
        direct = f"{self.registry.url}/v2/{repository}/blobs/{digest}"
        served = f"{self.api}/helm/{namespace}/charts/big-10.8.0.tgz"
        rates = {"registry": [], "ocicat": []}
        print(f"\narchive download: {megabytes} MiB, 7 rounds, alternately")
        for _ in range(7):
            for who, url in (("registry", direct), ("ocicat", served)):
                started = time.perf_counter()
                response = self.http.get(url, timeout=300, stream=True)
                hasher, size = hashlib.sha256(), 0
                for chunk in response.iter_content(1024 * 1024):
                    hasher.update(chunk)
                    size += len(chunk)
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or "sha256:" + hasher.hexdigest() != digest:
                    raise RuntimeError(f"{who}: HTTP {response.status_code}, {size} bytes, not the blob")
                rates[who].append(len(data) / elapsed / 1e6)
        for who, values in rates.items():
            print(f"  {who:8s} median {statistics.median(values):8.1f} MB/s   (min {min(values):.1f}, max {max(values):.1f})")
        ratio = statistics.median(rates["ocicat"]) / statistics.median(rates["registry"])
        print("      " + self.targets.at_least("archive throughput, ocicat / registry (median of 7)", ratio,
                                              ARCHIVE_RATIO_TARGET, "x", 2))

    def run(self) -> None:
        args = self.args
        self.setup()
        print_header("Helm repository", self.run_id, args.database_server)
        api = self.start("api")
        self.wait_api(api)
        scalar(self.db(), "SELECT 1")
        for versions in args.versions:
            namespace = f"bench-{versions}"
            self.load(namespace, versions)
            cold = args.cold if versions <= 10_000 else max(3, args.cold // 6)
            self.index(namespace, versions, cold, args.revalidations)
        self.archive(args.archive_mb)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=lambda s: [int(v) for v in s.split(",")], default=[10_000, 100_000],
                        help="chart versions per namespace, comma-separated (multiples of 100; default 10000,100000)")
    parser.add_argument("--cold", type=int, default=30, help="cold generations per namespace (a sixth of them, at "
                                                             "least 3, above 10,000 versions; default 30)")
    parser.add_argument("--revalidations", type=int, default=1000, help="304 requests per namespace (default 1000)")
    parser.add_argument("--archive-mb", type=int, default=64, help="size of the archive downloaded (default 64 MiB)")
    add_run_arguments(parser, time_limit=1800)
    args = parser.parse_args()
    return run_bounded(HelmRepo(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
