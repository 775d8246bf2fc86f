#!/usr/bin/env python
"""API benchmark: read latency on a million-tag catalog, by principal and under concurrent load, and one ocicat call
against walking the registry.

    .venv/bin/python bench/api.py [--tags N] [--charts N] [--namespaces N] [--requests N] [--churn N]
                                  [--mix-requests N] [--impossible-targets] [--database-server URL]

1. Load: a fresh database gets ocicat's migrations and a synthetic catalog, bulk-loaded
   in SQL (COPY of a per-repository plan, then INSERT ... SELECT over generate_series):
   --namespaces namespaces of 6 repositories each (one chart repository, five image
   repositories), --tags tags in all, --charts chart versions. Most image repositories
   are small; one has 10,000 tags and signatures on every tenth manifest. Manifests
   carry their content as the registry serves it (config, 1 to 9 layers, annotations;
   cosign's layout for signatures) and their layer rows. Chart rows carry Chart.yaml
   fields, a README and its HTML as ingest renders it (indexer.readme), values, and the
   SemVer sort key from indexer.helm.version_order. The search document and updated_at
   of every repository are then written by the worker's own statement
   (ocicat.catalog.writes.refresh_repositories) for the whole catalog at once, and
   checked against the same statement for one repository on a sample. The load drops
   the tables' secondary indexes and keys first and builds them after, as pg_restore
   does, and runs its big statements in slices on one connection per core. The catalog is private; a
   visibility rule makes 5 of its 100 organizations public. The callers: an
   administrator, a reporter with 1,000 roles, a reporter with 3, and anonymous.
2. Latency: a real `ocicat api` (gunicorn, OCICAT_API_WORKERS=2) answers sequential
   requests from one requests.Session; after a warm-up, --requests timed requests per
   endpoint give p50/p95/p99. A query over its target is shown with
   EXPLAIN (ANALYZE, BUFFERS), run on the same SQL (ocicat.catalog.reads) with the same
   parameters. The same requests by the 1,000-role reporter give the permission
   filter's cost, and what 20,000 repositories hidden from them cost them.
3. Churn: --churn events (pushes of rebuilt manifests and new chart versions, tag
   moves, manifest deletes, tag deletes) at random over the catalog, through
   ocicat.catalog.writes, one transaction each, while autovacuum does what it does.
4. Mixed load, after the churn: for each principal, a seeded random mix of list pages,
   details, tags, chart versions and searches over what they may see (one in ten about
   any repository: a 404 for them) at 1, 8 and 32 concurrent clients: throughput,
   p50/p95/p99 and n per row.
5. Registry comparison: 500 charts (500 repositories of one version each) are pushed
   to a real CNCF registry that notifies ocicat, and a real `ocicat worker` indexes
   them into the same big catalog. Listing them with their metadata the way a UI must
   do it against the registry (GET /v2/_catalog pages, tags/list per repository,
   manifest per tag, config blob per manifest) is timed against ocicat's chart list
   (GET /api/v1/charts?namespace=...&limit=<the API's maximum>, following next_cursor),
   --rounds times each. Both must return the same charts.

Exits 1 if a target is missed. A fresh database is created for the run and dropped at the end
(--keep-database keeps it for investigation); every process started here is stopped, also on
failure or timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urljoin

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import psycopg2  # noqa: E402
import psycopg2.extras  # noqa: E402
import requests  # noqa: E402
import sqlparse  # noqa: E402  (yoyo's, which splits migrations into statements the same way)

from api import auth  # noqa: E402
from api.pagination import MAX_LIMIT, decode_cursor  # noqa: E402
from bench.common import Run, add_targets_argument, machine_and_versions, percentile, run_bounded  # noqa: E402
from harness.oci import push_chart  # noqa: E402
from harness.postgres import admin  # noqa: E402
from harness.processes import wait_http, wait_until  # noqa: E402
from harness.registry import Registry  # noqa: E402
from indexer.helm import version_order  # noqa: E402
from indexer.readme import readme_html  # noqa: E402
from ocicat import accounts  # noqa: E402
from ocicat.catalog import reads, visibility, writes  # noqa: E402
from ocicat.catalog import search as catalog_search  # noqa: E402
from ocicat.catalog.visibility import VISIBLE, Visibility  # noqa: E402
from ocicat.db import connect  # noqa: E402
from ocicat.migrate import migrate  # noqa: E402
from ocicat.oci.media_types import OCI_INDEX, OCI_MANIFEST  # noqa: E402

LIST_TARGET_MS = 20.0
SEARCH_TARGET_MS = 50.0
DEEP_RATIO_TARGET = 1.5
BASELINE_TAGS = 1_000_000  # a larger catalog is measured side by side with one of these (Scales)
SCALE_RATIO_TARGET = 1.5  # each measure's p95 at the larger catalog against the baseline's
ORGANIZATIONS_IN_TURN = 20  # organizations whose repositories are listed in turn (a namespace filter's subtree)
GRANTED_PREFIXES = 1_000  # namespaces the reporter of the permission measurements holds a role on
FEW_GRANTS = 3  # and those of a reporter on a single team's namespaces
PUBLIC_ORGANIZATIONS = 5  # organizations (of 100) made public by a visibility rule: what the anonymous caller sees
PERMISSION_COST_TARGET = 1.2  # their p95 against the administrator's
# Repositories the reporter may not see, in one namespace, each with a word no other repository holds: what they
# cost the reporter must not tell how many there are (median against a missing namespace, a word nothing holds).
HIDDEN_NAMESPACE, HIDDEN_REPOSITORIES, HIDDEN_WORD = "zz-private", 20_000, "zzhiddenword"
MISSING_NAMESPACE, NO_MATCH_WORD = "zz-missing", "zznomatchword"
HIDDEN_COST_TARGET = 1.2
ADMIN = Visibility(default_public=False, everything=True)  # the API's filter for an administrator
REGISTRY_RATIO_TARGET = 100.0
REPOS_PER_NAMESPACE = 6  # one chart repository and five image repositories
BIG_REPOSITORY_TAGS = 10_000
BIG_SIGNED_EVERY = 10  # a cosign signature (tag sha256-<hex>.sig) on every tenth manifest of the big repository
SIGN_LATEST_EVERY = 20  # and on the newest manifest of every twentieth other image repository
RARE_WORD = "quokka"
README_VERSION = "@VERSION@"  # in each chart repository's README, replaced by each version's own
RARE_REPOSITORIES = 5
# The searches timed: (what, the query)
SEARCHES = (("common word", "server"), ("rare word", RARE_WORD), ("prefix", "serv"), ("one-letter prefix", "s"))
MANIFEST_ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"
# The bulk load: its tables, its session settings, and how many slices per core its big statements are cut into.
LOADED_TABLES = ("repositories", "manifests", "layers", "helm_charts", "tags")
LOAD_SETTINGS = "SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'"
LOAD_SLICES_PER_CORE = 4
# Migrations whose indexes on repositories get a timed step of their own: what writers wait for, on this catalog
TIMED_INDEXES = ("0019.search_postings", "0021.organization_order", "0022.name_byte_order")
FILL_POSTINGS = REPO_ROOT / "migrations" / "0020.search_postings_fill.sql"
# Migrations run again on the loaded catalog after 0020's fill, each timed, as an upgrade runs them: the postings'
# organizations filled in (0024), the indexes built concurrently (0025, 0026; dropped before the fill, which would
# otherwise write them). Each is safe to run again: the fill updates rows without an organization, the builds drop
# their index first.
REPLAYED_MIGRATIONS = ("0024.search_postings_organization_fill", "0025.search_postings_organization_index",
                       "0026.organization_charts_order")
REGISTRY_NAMESPACE = "regbench"

# The mixed load: what each request is, by weight; how many clients at once; its target at one client.
MIX = (("repositories", 25), ("repository", 15), ("tags", 15), ("chart version", 15), ("charts", 5), ("search", 25))
MIX_CLIENTS = (1, 8, 32)
MIX_TARGET_MS = SEARCH_TARGET_MS
# A day of churn, by weight: a rebuild pushed, a tag moved, a manifest deleted, a tag deleted.
CHURN_MIX = (("push", 40), ("move", 25), ("delete", 25), ("untag", 10))
CHURN_SQL = {
    "pick": """
SELECT m.id, m.repository_id, m.digest, m.kind, r.name
  FROM manifests m JOIN repositories r ON r.id = m.repository_id
 WHERE m.id >= %(from)s AND m.subject_digest IS NULL ORDER BY m.id LIMIT 1""",
    "copy manifest": """
INSERT INTO manifests (repository_id, digest, media_type, artifact_type, config_media_type, config_digest, kind,
                       manifest_size, size_bytes, annotations, content, pushed_at, indexed_at, metadata)
SELECT repository_id, %(digest)s, media_type, artifact_type, config_media_type, config_digest, kind, manifest_size,
       size_bytes, annotations, content, %(at)s, %(at)s, metadata
  FROM manifests WHERE id = %(id)s RETURNING id""",
    "copy layers": """
INSERT INTO layers (manifest_id, position, media_type, digest, size_bytes, annotations)
SELECT %(copy)s, position, media_type, digest, size_bytes, annotations FROM layers WHERE manifest_id = %(id)s""",
    "another manifest": """
SELECT digest FROM manifests WHERE repository_id = %(repository)s AND subject_digest IS NULL AND digest <> %(digest)s
 ORDER BY random() LIMIT 1""",
    "a tag": """
SELECT name FROM tags WHERE repository_id = %(repository)s AND digest IS NOT NULL AND name NOT LIKE 'sha256-%%'
 ORDER BY random() LIMIT 1""",
}


@dataclass(frozen=True)
class Principal:
    """A caller of the API: how they sign in, and what the API lets them see."""

    label: str
    headers: dict
    view: Visibility


# -- vocabulary -------------------------------------------------------------------

ORG_HEADS = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "wonka", "hooli", "vandelay", "cyberdyne"]
ORG_TAILS = ["labs", "cloud", "data", "platform", "retail", "bank", "health", "media", "games", "infra"]
TEAM_HEADS = ["payments", "search", "identity", "checkout", "ml", "edge", "billing", "observability", "storage",
              "messaging"]
TEAM_TAILS = ["core", "api", "ops", "web", "mobile", "batch", "internal", "public", "sandbox", "shared"]
SOFTWARE = [
    "nginx", "redis", "postgres", "kafka", "grafana", "prometheus", "loki", "tempo", "vault", "consul", "etcd",
    "coredns", "traefik", "envoy", "istio", "linkerd", "argo-cd", "flux", "cert-manager", "external-dns",
    "ingress-nginx", "keycloak", "minio", "rabbitmq", "mongodb", "mysql", "mariadb", "elasticsearch", "opensearch",
    "kibana", "fluent-bit", "fluentd", "jaeger", "zipkin", "memcached", "haproxy", "harbor", "gitea", "jenkins",
    "sonarqube", "airflow", "spark", "flink", "zookeeper", "clickhouse", "cassandra", "nats", "mosquitto",
    "api-server", "web-frontend", "auth-service", "payment-gateway", "order-service", "user-service",
    "notification-worker", "image-resizer", "report-generator", "batch-scheduler", "metrics-exporter", "log-shipper",
    "config-server", "feature-flags", "search-indexer", "cache-proxy",
]
ADJECTIVES = ["Lightweight", "Scalable", "Production-ready", "Minimal", "Secure", "High-performance", "Distributed",
              "Cloud-native", "Simple", "Fast", "Reliable", "Extensible", "Hardened", "Stateless", "Managed"]
# (thing, weight): "server" is in about a quarter of the descriptions, the other "serv*" words in more.
THINGS = [
    ("HTTP server", 8), ("web server", 5), ("DNS server", 2), ("application server", 3), ("reverse proxy", 6),
    ("message broker", 5), ("relational database", 5), ("in-memory cache", 5), ("metrics collector", 5),
    ("log forwarder", 5), ("service mesh", 3), ("API gateway", 5), ("job scheduler", 4), ("key-value store", 4),
    ("search engine", 4), ("object storage", 4), ("identity provider", 4), ("dashboard", 4), ("operator", 5),
    ("ingress controller", 4), ("exporter", 4), ("background worker", 4), ("stream processor", 3),
]
PURPOSES = [
    "for Kubernetes", "for microservices", "with TLS and autoscaling", "for internal tooling",
    "deployed on every cluster", "with Prometheus metrics", "behind the edge gateway", "for the checkout service",
    "for batch pipelines", "with high availability", "for multi-tenant workloads", "with OpenTelemetry tracing",
    "for the data platform", "tuned for low latency", "with automatic failover", "for staging and production",
]
KEYWORDS = ["http", "database", "cache", "monitoring", "logging", "security", "networking", "storage", "queue", "ml",
            "backend", "frontend", "proxy", "server", "gateway", "observability", "ci", "cd", "streaming", "auth"]
PEOPLE = ["Alice Martin", "Bob Nguyen", "Carla Rossi", "Deepak Rao", "Emma Schulz", "Farid Haddad", "Grace Kim",
          "Hugo Silva", "Ines Moreau", "Jonas Berg", "Kenji Sato", "Lena Novak", "Mateo Garcia", "Nora Jensen"]
VALUE_KEYS = ["replicaCount", "image.repository", "image.tag", "image.pullPolicy", "service.type", "service.port",
              "ingress.enabled", "ingress.className", "resources.limits.cpu", "resources.limits.memory",
              "autoscaling.enabled", "autoscaling.minReplicas", "autoscaling.maxReplicas", "nodeSelector",
              "tolerations", "affinity", "persistence.enabled", "persistence.size", "metrics.enabled",
              "metrics.serviceMonitor.enabled", "podSecurityContext.fsGroup", "securityContext.runAsUser"]
TEMPLATES = ["templates/_helpers.tpl", "templates/deployment.yaml", "templates/service.yaml", "templates/ingress.yaml",
             "templates/hpa.yaml", "templates/serviceaccount.yaml", "templates/NOTES.txt"]
# What the mixed load searches for: the words users type (a prefix of one, now and then)
SEARCH_WORDS = sorted({w.lower() for phrase in [*SOFTWARE, *KEYWORDS, *ADJECTIVES, *(t for t, _ in THINGS)]
                       for w in phrase.replace("-", " ").split() if len(w) > 2} | {RARE_WORD})


class Vocabulary:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.things = [t for t, w in THINGS for _ in range(w)]

    def description(self, rare: bool = False) -> str:
        rng = self.rng
        text = f"{rng.choice(ADJECTIVES)} {rng.choice(self.things)} {rng.choice(PURPOSES)}"
        if rng.random() < 0.4:
            text += f", {rng.choice(PURPOSES)}"
        if rare:
            text += f" (codename {RARE_WORD})"
        return text

    def keywords(self) -> list[str]:
        return self.rng.sample(KEYWORDS, self.rng.randint(2, 5))

    def maintainers(self, org: str) -> list[dict]:
        people = self.rng.sample(PEOPLE, self.rng.randint(1, 3))
        return [{"name": p, "email": f"{p.split()[0].lower()}@{org}.example.com"} for p in people]


def chart_version(variant: int, ord_: int) -> tuple[str, str]:
    """Version and appVersion of the ord_-th chart version pushed (1-based); every seventh is a release candidate."""
    major = variant % 3
    if ord_ % 7 == 3:
        version = f"{major}.{ord_ // 4 + 1}.0-rc.{ord_ % 4 + 1}"
    else:
        version = f"{major}.{ord_ // 4}.{ord_ % 4}"
    return version, f"{1 + variant}.{ord_}.0"


def spread(total: int, count: int, draw, rng: random.Random, low: int = 1) -> list[int]:
    """``count`` values drawn by ``draw()`` (each >= low), nudged one at a time until they sum to ``total``."""
    values = [max(low, draw()) for _ in range(count)]
    diff = total - sum(values)
    while diff:
        i = rng.randrange(count)
        if diff > 0:
            step = min(diff, max(1, diff // count))
            values[i] += step
            diff -= step
        elif values[i] > low:
            step = min(-diff, values[i] - low, max(1, -diff // count))
            values[i] -= step
            diff += step
    return values


# -- the catalog ------------------------------------------------------------------

PLAN_COLUMNS = ["id", "name", "namespace", "kind", "chart_name", "n_manifests", "n_tags", "m_first", "start_at",
                "span_s", "variant", "sign_every", "sign_last", "title", "description", "keywords", "maintainers",
                "home", "icon", "readme", "readme_html", "values_yaml"]

LOAD_SQL = {
    # in a schema of the load's own, not temporary tables: the parallel statements' connections read them
    "plan tables": """
CREATE SCHEMA bench_load;
CREATE UNLOGGED TABLE bench_load.plan (
    id bigint PRIMARY KEY, name text, namespace text, kind text, chart_name text, n_manifests int, n_tags int,
    m_first bigint, start_at timestamptz, span_s double precision, variant int, sign_every int, sign_last boolean,
    title text, description text, keywords jsonb, maintainers jsonb, home text, icon text, readme text,
    readme_html text, values_yaml text);
CREATE UNLOGGED TABLE bench_load.versions (variant int, ord int, version text, app_version text, prerelease boolean,
                                           version_key text COLLATE "C", PRIMARY KEY (variant, ord));
-- Immutable down to each operator and cast (text || text, int8::text, text::bytea: the UTF-8 database's bytes), so
-- the planner inlines them: called as functions, they took a third of the manifests' INSERT.
CREATE FUNCTION bench_load.image_tag(i bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'v' || (1 + (i - 1) / 100)::text || '.' || ((i - 1) / 10 % 10)::text || '.' || ((i - 1) % 10)::text $$;
CREATE FUNCTION bench_load.digest(what text, i bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'sha256:' || encode(sha256(('ocicat-bench-' || what || '-' || i::text)::bytea), 'hex') $$;
""",
    "repositories": """
INSERT INTO repositories (id, name, namespace, created_at, updated_at)
SELECT id, name, namespace, start_at, start_at FROM bench_load.plan ORDER BY id;
SELECT setval('repositories_id_seq', (SELECT max(id) FROM repositories));
""",
    # manifest_size: the stored jsonb's size, about a tenth above the JSON text's; rendering every manifest as text
    # to measure it took 40% of this statement's time
    "manifests": """
INSERT INTO manifests (id, repository_id, digest, media_type, config_media_type, config_digest, kind, manifest_size,
                       size_bytes, annotations, content, pushed_at, indexed_at, metadata)
SELECT x.id, p.id, bench_load.digest('manifest', x.id), 'application/vnd.oci.image.manifest.v1+json',
       x.config_type, bench_load.digest('config', x.id),
       CASE p.kind WHEN 'chart' THEN 'helm-chart' ELSE 'image' END,
       pg_column_size(c.content), x.size, a.annotations, c.content, x.pushed, x.pushed + interval '1 second',
       coalesce(a.metadata, '{}'::jsonb)
  FROM bench_load.plan p
 CROSS JOIN LATERAL generate_series(1, p.n_manifests) i
 CROSS JOIN LATERAL (SELECT p.m_first + i - 1 AS id, ((p.m_first + i) * 2654435761) %% 1000000007 AS h,
                            p.start_at + make_interval(secs => p.span_s * (i - 1) / greatest(p.n_manifests - 1, 1))
                              AS pushed) x0
 CROSS JOIN LATERAL (SELECT x0.*,
                            CASE p.kind WHEN 'chart' THEN 'application/vnd.cncf.helm.config.v1+json'
                                        ELSE 'application/vnd.oci.image.config.v1+json' END AS config_type,
                            CASE p.kind WHEN 'chart' THEN 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'
                                        ELSE 'application/vnd.oci.image.layer.v1.tar+gzip' END AS layer_type,
                            -- an image has 1 to 9 layers (a base image, then a few of its own), a chart one
                            CASE p.kind WHEN 'chart' THEN 1 ELSE 1 + x0.h %% 9 END AS layers,
                            CASE p.kind WHEN 'chart' THEN 3000 + x0.h %% 60000 ELSE 5000000 + x0.h %% 800000000 END
                              AS size) x
  LEFT JOIN bench_load.versions v ON p.kind = 'chart' AND v.variant = p.variant AND v.ord = i
 CROSS JOIN LATERAL (
     SELECT CASE WHEN p.kind = 'chart' THEN
                 jsonb_build_object('org.opencontainers.image.created', to_char(x.pushed AT TIME ZONE 'UTC',
                                                                                 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                    'org.opencontainers.image.description', p.description,
                                    'org.opencontainers.image.title', p.chart_name,
                                    'org.opencontainers.image.version', v.version)
                 WHEN p.title IS NOT NULL THEN
                 jsonb_build_object('org.opencontainers.image.title', p.title,
                                    'org.opencontainers.image.description', p.description,
                                    'org.opencontainers.image.source', p.home,
                                    'org.opencontainers.image.version', bench_load.image_tag(i))
                 ELSE '{}'::jsonb END AS annotations,
            CASE WHEN p.kind = 'chart' THEN
                 jsonb_build_object('title', p.chart_name, 'description', p.description, 'version', v.version,
                                    'created', to_char(x.pushed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                 WHEN p.title IS NOT NULL THEN
                 jsonb_build_object('title', p.title, 'description', p.description, 'source', p.home,
                                    'version', bench_load.image_tag(i))
                 END AS metadata) a
 -- the manifest as the registry serves it (what ocicat keeps in manifests.content); OFFSET 0 keeps the planner from
 -- pulling the subquery up into the two columns that read it, which would build every manifest twice
 CROSS JOIN LATERAL (
     SELECT jsonb_build_object(
                'schemaVersion', 2, 'mediaType', 'application/vnd.oci.image.manifest.v1+json',
                'config', jsonb_build_object('mediaType', x.config_type, 'digest', bench_load.digest('config', x.id),
                                             'size', 400 + x.h %% 7000),
                'layers', (SELECT jsonb_agg(jsonb_build_object('mediaType', x.layer_type,
                                                               'digest', bench_load.digest('layer', x.id * 16 + l),
                                                               'size', x.size / x.layers) ORDER BY l)
                             FROM generate_series(1, x.layers) l),
                'annotations', a.annotations) AS content OFFSET 0) c
 WHERE p.id >= %(repository_from)s AND p.id < %(repository_to)s
 ORDER BY x.id;
""",
    "signatures": """
INSERT INTO manifests (id, repository_id, digest, media_type, config_media_type, config_digest, kind, manifest_size,
                       size_bytes, annotations, subject_digest, content, pushed_at, indexed_at)
SELECT s.id, s.repository_id, bench_load.digest('signature', s.id), 'application/vnd.oci.image.manifest.v1+json',
       'application/vnd.oci.image.config.v1+json', bench_load.digest('signature-config', s.id), 'signature',
       pg_column_size(c.content), pg_column_size(c.content) + 233 + 1380, '{}'::jsonb, s.subject_digest,
       c.content, s.pushed_at + interval '30 seconds', s.pushed_at + interval '31 seconds'
  FROM (SELECT (SELECT max(id) FROM manifests) + row_number() OVER (ORDER BY m.id) AS id, m.repository_id,
               m.digest AS subject_digest, m.pushed_at
          FROM manifests m JOIN bench_load.plan p ON p.id = m.repository_id
         WHERE (p.sign_every > 0 AND (m.id - p.m_first + 1) % p.sign_every = 0)
            OR (p.sign_last AND m.id = p.m_first + p.n_manifests - 1)) s
 -- a cosign signature: the simple-signing payload as its one layer, the signature in its annotations
 CROSS JOIN LATERAL (
     SELECT jsonb_build_object(
                'schemaVersion', 2, 'mediaType', 'application/vnd.oci.image.manifest.v1+json',
                'config', jsonb_build_object('mediaType', 'application/vnd.oci.image.config.v1+json', 'size', 233,
                                             'digest', bench_load.digest('signature-config', s.id)),
                'layers', jsonb_build_array(jsonb_build_object(
                    'mediaType', 'application/vnd.dev.cosign.simplesigning.v1+json', 'size', 1380,
                    'digest', bench_load.digest('signature-payload', s.id),
                    'annotations', jsonb_build_object(
                        'dev.cosignproject.cosign/signature',
                        encode(sha512(convert_to('sig' || s.id, 'UTF8')), 'base64'))))) AS content OFFSET 0) c;
SELECT setval('manifests_id_seq', (SELECT max(id) FROM manifests));
""",
    "layers": """
INSERT INTO layers (manifest_id, position, media_type, digest, size_bytes, annotations)
SELECT m.id, l.n - 1, l.v->>'mediaType', l.v->>'digest', (l.v->>'size')::bigint, coalesce(l.v->'annotations', '{}')
  FROM manifests m CROSS JOIN LATERAL jsonb_array_elements(m.content->'layers') WITH ORDINALITY l(v, n)
 WHERE m.id >= %(manifest_from)s AND m.id < %(manifest_to)s
 ORDER BY m.id, l.n;
""",
    "helm_charts": """
INSERT INTO helm_charts (manifest_id, api_version, name, version, kube_version, description, type, keywords, home,
                         sources, maintainers, icon, app_version, readme, readme_html, values_yaml, templates,
                         prerelease, version_key)
SELECT m.id, 'v2', p.chart_name, v.version, '>=1.23.0-0', p.description, 'application', p.keywords, p.home,
       jsonb_build_array(p.home), p.maintainers, p.icon, v.app_version,
       replace(p.readme, %(version)s, v.version), replace(p.readme_html, %(version)s, v.version),
       p.values_yaml, %(templates)s::jsonb, v.prerelease, v.version_key
  FROM manifests m
  JOIN bench_load.plan p ON p.id = m.repository_id AND p.kind = 'chart'
  JOIN bench_load.versions v ON v.variant = p.variant AND v.ord = m.id - p.m_first + 1
 WHERE m.id >= %(manifest_from)s AND m.id < %(manifest_to)s
 ORDER BY m.id;
""",
    "tags": """
INSERT INTO tags (repository_id, name, digest, event_at)
SELECT m.repository_id,
       CASE WHEN p.kind = 'chart' THEN replace(v.version, '+', '_')
            ELSE bench_load.image_tag(m.id - p.m_first + 1) END,
       m.digest, m.pushed_at
  FROM manifests m
  JOIN bench_load.plan p ON p.id = m.repository_id
  LEFT JOIN bench_load.versions v ON p.kind = 'chart' AND v.variant = p.variant AND v.ord = m.id - p.m_first + 1
 WHERE m.subject_digest IS NULL AND m.id >= %(manifest_from)s AND m.id < %(manifest_to)s
UNION ALL
SELECT m.repository_id, 'latest', m.digest, m.pushed_at
  FROM bench_load.plan p JOIN manifests m ON m.id = p.m_first + p.n_manifests - 1
 WHERE p.kind = 'image' AND p.n_tags > p.n_manifests AND m.id >= %(manifest_from)s AND m.id < %(manifest_to)s
UNION ALL
SELECT s.repository_id, 'sha256-' || substr(s.subject_digest, 8) || '.sig', s.digest, s.pushed_at
  FROM manifests s WHERE s.subject_digest IS NOT NULL AND s.id >= %(manifest_from)s AND s.id < %(manifest_to)s
 ORDER BY 1, 2;
""",
    # Repositories nobody but an administrator sees (the catalog is private, no role reaches them), each with a
    # search document as the worker writes one; their manifests do not matter to the reads measured on them.
    "hidden namespace": """
INSERT INTO repositories (name, namespace, created_at, updated_at, manifest_count, tag_count, kinds, size_bytes,
                          last_pushed_at, search)
SELECT %(namespace)s || '/app-' || i, %(namespace)s, %(now)s, %(now)s, 1, 1, '{image}', 1024, %(now)s,
       setweight(to_tsvector('simple', %(namespace)s || '/app-' || i || ' ' || translate(%(namespace)s || '/app-' || i,
                                                                                     '/_.', '   ')), 'A')
       || setweight(to_tsvector('simple', %(word)s), 'B')
  FROM generate_series(1, %(count)s) i;
""",
}


class Catalog:
    """The synthetic catalog's shape, decided in Python; the rows themselves are made by PostgreSQL."""

    def __init__(self, args, rng: random.Random, now: datetime):
        self.args = args
        namespaces = args.namespaces
        vocab = Vocabulary(rng)
        image_repos = namespaces * (REPOS_PER_NAMESPACE - 1)
        self.rows: list[dict] = []

        # chart repositories: versions between 2 and 18 (10 on average), summing to --charts
        chart_versions = spread(args.charts, namespaces, lambda: rng.randint(2, 18), rng, low=1)
        # image repositories: one with BIG_REPOSITORY_TAGS tags; the rest mostly small (x^3 skew)
        big_index = rng.randrange(image_repos)
        sign_last = [i != big_index and i % SIGN_LATEST_EVERY == 0 for i in range(image_repos)]
        big_manifests = BIG_REPOSITORY_TAGS - 1  # plus "latest"
        signatures = big_manifests // BIG_SIGNED_EVERY + sum(sign_last)
        small_tags = args.tags - args.charts - BIG_REPOSITORY_TAGS - signatures
        if small_tags < image_repos - 1:
            raise SystemExit(f"--tags {args.tags} is too few for {image_repos} image repositories")
        mean = small_tags / (image_repos - 1)
        scale = max(0.0, 4 * (mean - 0.5))
        small = spread(small_tags, image_repos - 1, lambda: 1 + int(rng.random() ** 3 * scale), rng)
        image_tags = small[:big_index] + [BIG_REPOSITORY_TAGS] + small[big_index:]

        rare = set(rng.sample(range(namespaces * REPOS_PER_NAMESPACE), RARE_REPOSITORIES))
        self.rare_names: list[str] = []
        next_manifest = 1
        image_i = 0
        year = 365 * 86400
        for k in range(namespaces):
            org = f"{ORG_HEADS[k % 10]}-{ORG_TAILS[k // 10 % 10]}"
            namespace = f"{org}/{TEAM_HEADS[k // 100 % 10]}-{TEAM_TAILS[k // 1000 % 10]}"
            if k >= 10_000:  # past 10,000 the combinations repeat: keep namespaces unique
                namespace += f"-{k // 10_000}"
            for j in range(REPOS_PER_NAMESPACE):
                repo_id = len(self.rows) + 1
                soft = SOFTWARE[(k * 7 + j) % len(SOFTWARE)]
                name = f"{namespace}/{soft}"
                is_rare = repo_id - 1 in rare
                start = rng.uniform(0, 0.9 * year)
                row = {
                    "id": repo_id, "name": name, "namespace": namespace, "chart_name": soft,
                    "start_at": now - timedelta(seconds=year - start), "span_s": rng.uniform(0, year - start - 3600),
                    "variant": rng.randrange(4), "sign_every": 0, "sign_last": False, "title": None,
                    "description": None, "keywords": None, "maintainers": None,
                    "home": f"https://git.example.com/{name}", "icon": None, "readme": None, "readme_html": None,
                    "values_yaml": None,
                }
                if j == 0:
                    n = chart_versions[k]
                    params = rng.sample(VALUE_KEYS, 14)
                    description = vocab.description(is_rare)
                    readme = self._readme(soft, name, description, params, vocab)
                    row.update(
                        kind="chart", n_manifests=n, n_tags=n, description=description,
                        keywords=json.dumps(vocab.keywords()), maintainers=json.dumps(vocab.maintainers(org)),
                        icon=f"https://assets.example.com/icons/{soft}.svg", readme=readme,
                        readme_html=readme_html(readme),
                        values_yaml="".join(f"# {vocab.description()}\n{p}: {rng.randint(0, 9)}\n" for p in params),
                    )
                else:
                    tags = image_tags[image_i]
                    n = tags - 1 if tags >= 2 else 1
                    row.update(kind="image", n_manifests=n, n_tags=tags, sign_last=sign_last[image_i])
                    if image_i == big_index:
                        row.update(sign_every=BIG_SIGNED_EVERY, start_at=now - timedelta(seconds=year),
                                   span_s=year - 3600)
                        self.big = row
                    if is_rare or rng.random() < 0.5:
                        row.update(title=soft, description=vocab.description(is_rare))
                    image_i += 1
                if is_rare:
                    self.rare_names.append(name)
                row["m_first"] = next_manifest
                next_manifest += row["n_manifests"]
                self.rows.append(row)
        self.signatures = signatures
        self.max_versions = max(chart_versions)

    @staticmethod
    def _readme(chart: str, repository: str, description: str, params: list[str], vocab: Vocabulary) -> str:
        """A chart README of the usual shape (indexer.readme renders it as ingest does); README_VERSION stands for
        each version's own."""
        lines = [f"# {chart}", "", description, "", "## TL;DR", "", "```console",
                 f"helm install my-{chart} oci://registry.example.com/{repository} --version {README_VERSION}", "```",
                 "", "## Introduction", "", vocab.description(), "", "## Parameters", "",
                 "| Name | Description | Value |", "|------|-------------|-------|"]
        lines += [f"| `{p}` | {vocab.description()} | `{vocab.rng.randint(0, 100)}` |" for p in params]
        lines += ["", "## Upgrading", "", f"{vocab.description()}. {vocab.description()}.", ""]
        return "\n".join(lines)

    def versions(self) -> list[tuple]:
        rows = []
        for variant in range(4):
            for ord_ in range(1, self.max_versions + 1):
                version, app_version = chart_version(variant, ord_)
                prerelease, key = version_order(version)
                rows.append((variant, ord_, version, app_version, prerelease, key))
        return rows

    def sample_chart_versions(self, rng: random.Random, count: int) -> list[tuple[str, str]]:
        charts = [r for r in self.rows if r["kind"] == "chart"]
        picks = []
        for row in rng.sample(charts, min(count, len(charts))):
            picks.append((row["name"], chart_version(row["variant"], rng.randint(1, row["n_manifests"]))[0]))
        return picks


    def slices(self, count: int) -> list[dict]:
        """The catalog cut into ``count`` runs of consecutive repositories with about as many manifests each, as
        the bulk load's statements take them (Bench.in_parallel): repository ids and manifest ids from (inclusive)
        and to (exclusive). The last run also takes the signatures, whose ids follow every other manifest's."""
        total = sum(row["n_manifests"] for row in self.rows)
        cuts, seen = [self.rows[0]], 0
        for row in self.rows:
            if seen >= total * len(cuts) / count:
                cuts.append(row)
            seen += row["n_manifests"]
        end = {"id": 2**62, "m_first": 2**62}
        return [{"repository_from": first["id"], "repository_to": after["id"],
                 "manifest_from": first["m_first"], "manifest_to": after["m_first"]}
                for first, after in zip(cuts, cuts[1:] + [end])]


@dataclass
class Deferred:
    """The loaded tables' unique and foreign keys and secondary indexes, dropped before the bulk load and made
    again after it, as pg_restore does: one build per index and one validating join per key, instead of an index
    entry and a key check per row."""

    indexes: list[tuple[str, str, str]]  # table, index, CREATE INDEX
    constraints: list[str]  # ALTER TABLE ... ADD CONSTRAINT, the unique keys before the foreign keys

    @classmethod
    def take(cls, cur, tables: tuple[str, ...]) -> Deferred:
        cur.execute("""
            SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.conrelid::regclass, c.conname),
                   format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', c.conrelid::regclass, c.conname,
                          pg_get_constraintdef(c.oid))
              FROM pg_constraint c
             WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('u', 'f')
             ORDER BY c.contype = 'f', c.conname""", (list(tables),))
        constraints = cur.fetchall()
        cur.execute("""
            SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
              FROM pg_index i
             WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype = 'u')
             ORDER BY 1, 2""", (list(tables),))
        indexes = cur.fetchall()
        for drop, _ in reversed(constraints):  # the foreign keys first
            cur.execute(drop)
        for _, index, _ in indexes:
            cur.execute(f"DROP INDEX {index}")
        return cls(indexes, [add for _, add in constraints])


def copy_rows(cur, table: str, columns: list[str], rows) -> None:
    """COPY ``rows`` (tuples in ``columns`` order) into ``table`` through one in-memory text buffer."""

    def field(value) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(field(v) for v in row))
        buffer.write("\n")
    buffer.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


# -- measuring --------------------------------------------------------------------


class ExplainCursor:
    """Runs each statement of an ocicat.catalog.reads function as EXPLAIN (ANALYZE, BUFFERS) and keeps the plans."""

    def __init__(self, cur):
        self.cur = cur
        self.plans: list[str] = []

    def execute(self, sql, params=None):
        # Plans of queries only; every statement then runs for real, so later ones get its results.
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            self.cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            self.plans.append("\n".join(row["QUERY PLAN"] for row in self.cur.fetchall()))
        self.cur.execute(sql, params)

    def fetchall(self):
        return self.cur.fetchall()

    def fetchone(self):
        return self.cur.fetchone()


class Bench(Run):
    name = "api"
    settings = {"OCICAT_DEFAULT_VISIBILITY": "private", "OCICAT_API_WORKERS": 2}

    def __init__(self, args, latency_only: bool = False):
        super().__init__(args)
        self.rng = random.Random(args.seed)
        self.latency_only = latency_only  # a baseline scale's run (Scales): the load and the latency table only
        self.measured: dict[str, float] = {}  # p95 by measure, for Scales

    def server_settings(self) -> str:
        names = ["shared_buffers", "effective_cache_size", "work_mem", "random_page_cost", "max_parallel_workers_per_gather", "jit"]
        conn = psycopg2.connect(self.args.database_server, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT name, current_setting(name) FROM unnest(%s::text[]) name", (names,))
                return ", ".join(f"{name}={value}" for name, value in cur.fetchall())
        finally:
            conn.close()

    # -- 1. load ----------------------------------------------------------------

    def load(self) -> None:
        args = self.args
        admin(args.database_server, f"CREATE DATABASE {self.db_name}")
        self.db_created = True
        started = time.monotonic()
        migrate(self.db_url)
        print(f"      migrations applied in {time.monotonic() - started:.1f} s")

        now = datetime.now(timezone.utc).replace(microsecond=0)
        catalog = Catalog(args, self.rng, now)
        self.catalog = catalog
        conn = self.db()
        slices = catalog.slices(LOAD_SLICES_PER_CORE * os.cpu_count())
        timed_indexes = {migration: re.findall(r"^(CREATE INDEX (repositories_\w+)\s.*?;)$",
                                               (REPO_ROOT / "migrations" / f"{migration}.sql").read_text(), re.M | re.S)
                         for migration in TIMED_INDEXES}
        timed_names = {name for indexes in timed_indexes.values() for _, name in indexes}
        load_started = time.monotonic()

        def step(label: str, action) -> None:
            t0 = time.monotonic()
            action()
            print(f"      {label:<44} {time.monotonic() - t0:7.1f} s", flush=True)

        with conn.cursor() as cur:
            cur.execute(LOAD_SETTINGS)
            step("plan tables", lambda: cur.execute(LOAD_SQL["plan tables"]))
            step("COPY plan (per repository)", lambda: (
                copy_rows(cur, "bench_load.plan", PLAN_COLUMNS, ([r[c] for c in PLAN_COLUMNS] for r in catalog.rows)),
                copy_rows(cur, "bench_load.versions", ["variant", "ord", "version", "app_version", "prerelease",
                                                       "version_key"], catalog.versions()),
                cur.execute("ANALYZE bench_load.plan; ANALYZE bench_load.versions"),
            ))
            deferred = Deferred.take(cur, LOADED_TABLES)
            step("INSERT repositories", lambda: cur.execute(LOAD_SQL["repositories"]))
            step("INSERT manifests", lambda: self.in_parallel([(LOAD_SQL["manifests"], part) for part in slices]))
            step("INSERT signatures", lambda: cur.execute(LOAD_SQL["signatures"]))
            for table in ("layers", "helm_charts", "tags"):
                extra = {"templates": json.dumps(TEMPLATES), "version": README_VERSION} if table == "helm_charts" else {}
                step(f"INSERT {table}", lambda table=table, extra=extra: self.in_parallel(
                    [(LOAD_SQL[table], {**part, **extra}) for part in slices]))
            # the refresh reads through the other tables' indexes and writes repositories without theirs
            step("indexes on the other tables", lambda: self.in_parallel(
                [(sql, None) for table, _, sql in deferred.indexes if table != "repositories"]))
            # Synchronous from here: VACUUM may only mark pages all-visible once the inserting transactions'
            # commits are flushed, and an asynchronous commit holds back every xid of its clog LSN group.
            cur.execute("SET synchronous_commit = on")
            # the search postings come last, by migration 0020's own pass (timed: the migration on this catalog)
            cur.execute("ALTER TABLE repositories DISABLE TRIGGER repositories_search_postings")
            step("refresh search + updated_at", lambda: self.refresh_all(cur))
            step("hidden namespace", lambda: cur.execute(LOAD_SQL["hidden namespace"], {
                "namespace": HIDDEN_NAMESPACE, "count": HIDDEN_REPOSITORIES, "word": HIDDEN_WORD, "now": now}))
            organizations = sorted({row["namespace"].split("/")[0] for row in catalog.rows})
            self.public = self.rng.sample(organizations, min(PUBLIC_ORGANIZATIONS, len(organizations)))
            step(f"visibility rules ({len(self.public)} public)",
                 lambda: [visibility.set_rule(cur, organization, True) for organization in self.public])
            cur.execute("ALTER TABLE repositories ENABLE TRIGGER repositories_search_postings")
            # the migrations' indexes of TIMED_INDEXES are built in steps of their own below
            step("indexes on repositories", lambda: self.in_parallel(
                [(sql, None) for table, index, sql in deferred.indexes
                 if table == "repositories" and index not in timed_names]))
            step("unique and foreign keys", lambda: [cur.execute(sql) for sql in deferred.constraints])
            for migration, indexes in timed_indexes.items():
                step(f"migration {migration[:4]}: indexes on repositories",
                     lambda indexes=indexes: [cur.execute(sql) for sql, _ in indexes])
            replayed = {migration: sqlparse.split(sqlparse.format(
                (REPO_ROOT / "migrations" / f"{migration}.sql").read_text(), strip_comments=True))
                for migration in REPLAYED_MIGRATIONS}
            for statements in replayed.values():
                for sql in statements:
                    if sql.startswith("DROP INDEX"):
                        cur.execute(sql)
            step("migration 0020: search postings", lambda: cur.execute(FILL_POSTINGS.read_text()))
            for migration, statements in replayed.items():
                step(f"migration {migration[:4]}",
                     lambda statements=statements: [cur.execute(sql) for sql in statements])
            step("VACUUM ANALYZE", lambda: cur.execute("VACUUM (ANALYZE)"))
            cur.execute("DROP SCHEMA bench_load CASCADE")
            cur.execute("SELECT count(*) FROM repositories WHERE public")
            public = cur.fetchone()[0]
        print(f"      bulk load total                              {time.monotonic() - load_started:7.1f} s")

        with conn.cursor() as cur:
            cur.execute("""
                SELECT (SELECT count(*) FROM repositories), (SELECT count(DISTINCT namespace) FROM repositories),
                       (SELECT count(*) FROM manifests), (SELECT count(*) FROM manifests WHERE kind = 'signature'),
                       (SELECT count(*) FROM tags), (SELECT count(*) FROM helm_charts),
                       (SELECT count(*) FROM tags WHERE repository_id = %s),
                       (SELECT count(*) FROM repositories WHERE search @@ to_tsquery('simple', 'server')),
                       (SELECT count(*) FROM repositories WHERE search @@ to_tsquery('simple', %s)),
                       (SELECT count(*) FROM repositories WHERE search @@ to_tsquery('simple', 'serv:*'))
            """, (catalog.big["id"], RARE_WORD))
            repos, namespaces, manifests, signatures, tags, charts, big_tags, common, rare, prefix = cur.fetchone()
        print(f"      catalog: {repos:,} repositories in {namespaces:,} namespaces; {manifests:,} manifests "
              f"({signatures:,} signatures); {tags:,} tags; {charts:,} chart versions")
        print(f"      largest repository {catalog.big['name']}: {big_tags:,} tags "
              f"({BIG_REPOSITORY_TAGS:,} versions + {catalog.big['n_manifests'] // BIG_SIGNED_EVERY:,} signature tags)")
        print(f"      search documents matching: 'server' {common:,}, '{RARE_WORD}' {rare:,}, 'serv:*' {prefix:,}")
        print(f"      public (by a rule on {', '.join(self.public)}): {public:,} repositories; the rest private")
        if tags != args.tags or charts != args.charts:
            raise RuntimeError(f"loaded {tags} tags and {charts} charts, wanted {args.tags} and {args.charts}")
        self.check_search_documents(conn)
        self.add_principals(conn)
        self.print_sizes(conn)

    def add_principals(self, conn) -> None:
        """The callers: an administrator (the single-URL requests are theirs), reporters on GRANTED_PREFIXES and on
        FEW_GRANTS namespaces, and an anonymous caller, who sees the PUBLIC_ORGANIZATIONS made public in the load."""
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT namespace FROM repositories WHERE namespace <> %s GROUP BY namespace ORDER BY md5(namespace)",
                        (HIDDEN_NAMESPACE,))
            namespaces = [r["namespace"] for r in cur.fetchall()]
            granted = namespaces[:GRANTED_PREFIXES]
            # One of the rare word's repositories among them, so that the reporter's rare-word search has a hit at
            # every scale: at 10M tags their 1,000 namespaces of 100,000 held none of the 5 by chance.
            rare_namespace = self.catalog.rare_names[0].rsplit("/", 1)[0]
            if rare_namespace not in granted:
                granted[-1] = rare_namespace
            users = (("administrator", "bench-admin", True, []),
                     (f"reporter, {GRANTED_PREFIXES:,} roles", "bench-reporter", False, granted),
                     (f"reporter, {FEW_GRANTS} roles", "bench-reporter-few", False, namespaces[-FEW_GRANTS:]))
            self.principals = []
            for label, user, is_admin, granted in users:
                accounts.create_user(cur, user, admin=is_admin)
                for path in granted:
                    accounts.grant(cur, user, path, "reporter")
                token = accounts.create_token(cur, user)[1]
                # the caller's filter as the API builds it, for the query plans and the mixed load's targets
                view = auth.from_account(cur, accounts.authenticate(cur, token), False).view
                self.principals.append(Principal(label, {"Authorization": f"Bearer {token}"}, view))
        self.principals.append(Principal("anonymous", {}, auth.anonymous(False).view))
        administrator, reporter = self.principals[:2]
        self.http.headers.update(administrator.headers)
        self.reporter, self.reporter_access = reporter.headers, reporter.view
        print(f"      principals: {', '.join(p.label for p in self.principals)}")

    def refresh_all(self, cur) -> None:
        """Every repository's figures, search document and updated_at, by the worker's own statement
        (writes.refresh_repositories) over the whole catalog at once, with the time of each repository's newest
        push as its event time."""
        cur.execute("SELECT repository_id, max(pushed_at) FROM manifests GROUP BY repository_id")
        writes.refresh_repositories(cur, dict(cur.fetchall()))

    def in_parallel(self, statements: list[tuple[str, dict | None]]) -> None:
        """Run the statements on as many connections as the machine has cores, each taking the next statement as
        it finishes one: a statement runs on one core, so a table's slices (Catalog.slices) or index builds share
        the machine. A failure or the run's time limit cancels the statements in flight."""
        connections = []
        for _ in range(min(os.cpu_count(), len(statements))):
            conn = psycopg2.connect(self.db_url, connect_timeout=5)
            conn.autocommit = True
            connections.append(conn)
        todo = list(reversed(statements))

        def work(conn) -> None:
            with conn.cursor() as cur:
                cur.execute(LOAD_SETTINGS)
                while todo:
                    try:
                        statement = todo.pop()
                    except IndexError:  # another connection took the last one
                        return
                    cur.execute(*statement)

        pool = ThreadPoolExecutor(len(connections))
        try:
            for future in [pool.submit(work, conn) for conn in connections]:
                future.result()
        except BaseException:
            for conn in connections:
                conn.cancel()
            raise
        finally:
            pool.shutdown()
            for conn in connections:
                conn.close()

    def check_search_documents(self, conn, sample: int = 200) -> None:
        """The documents written for the whole catalog at once equal what writes.refresh_repositories writes for one
        repository (checked, then rolled back)."""
        check = psycopg2.connect(self.db_url, connect_timeout=5)
        try:
            with check.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                ids = [r["id"] for r in self.rng.sample(self.catalog.rows, min(sample, len(self.catalog.rows)))]
                ids.append(self.catalog.big["id"])
                cur.execute("SELECT id, search::text AS search, updated_at FROM repositories WHERE id = ANY(%s)", (ids,))
                before = {r["id"]: r for r in cur.fetchall()}
                for repository_id, row in before.items():  # one by one, as the worker's batches are small
                    writes.refresh_repositories(cur, {repository_id: row["updated_at"]})
                cur.execute("SELECT id, search::text AS search, updated_at FROM repositories WHERE id = ANY(%s)", (ids,))
                after = {r["id"]: r for r in cur.fetchall()}
            check.rollback()
        finally:
            check.close()
        differ = [i for i in before if before[i] != after[i]]
        if differ:
            raise RuntimeError(f"bulk search documents differ from one repository's refresh for ids {differ[:10]}")
        print(f"      search documents checked against one repository's refresh on {len(before)} "
              "repositories: identical")

    def print_sizes(self, conn) -> None:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid),
                       s.n_live_tup, s.n_dead_tup, s.autovacuum_count
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  JOIN pg_stat_user_tables s ON s.relid = c.oid
                 WHERE n.nspname = 'public' AND c.relkind = 'r'
                   AND c.relname IN ('repositories', 'manifests', 'layers', 'tags', 'helm_charts', 'search_postings')
                 ORDER BY pg_total_relation_size(c.oid) DESC
            """)
            rows = cur.fetchall()
            cur.execute("SELECT pg_database_size(current_database())")
            database = cur.fetchone()[0]
        mib = 1024 * 1024
        print("      table sizes (MiB):   table+toast  indexes    total    live rows  dead rows  autovacuums")
        for name, table, indexes, total, live, dead, autovacuums in rows:
            print(f"        {name:<16} {table / mib:12.1f} {indexes / mib:8.1f} {total / mib:8.1f} {live:12,} "
                  f"{dead:10,} {autovacuums:12}")
        print(f"        database total {database / mib:,.1f} MiB")

    # -- 2. latency -------------------------------------------------------------

    def get(self, url: str, params: dict | None = None, headers: dict | None = None) -> requests.Response:
        response = self.http.get(url, params=params, headers=headers, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"GET {response.url} -> {response.status_code}: {response.text[:500]}")
        return response

    def measure(self, label: str, requests_: list[tuple[str, dict | None]], target_ms: float, explain=None,
                headers: dict | None = None, empty: bool = False) -> dict:
        """Sequential GETs cycling through ``requests_``: a warm-up, then --requests timed ones (``empty``: the
        answers are meant to list nothing)."""
        n = self.args.requests
        for i in range(max(10, n // 10)):
            url, params = requests_[i % len(requests_)]
            body = self.get(url, params, headers).json()
            if i == 0 and "items" in body and bool(body["items"]) == empty:
                raise RuntimeError(f"{label}: {url} {params} returned {'items' if empty else 'no items'}")
        times = []
        budget = time.monotonic() + self.args.endpoint_seconds
        for i in range(n):
            url, params = requests_[i % len(requests_)]
            t0 = time.perf_counter()
            response = self.http.get(url, params=params, headers=headers, timeout=30)
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise RuntimeError(f"GET {response.url} -> {response.status_code}: {response.text[:500]}")
            times.append(elapsed * 1000)
            if time.monotonic() > budget:
                break
        p50, p95, p99 = (percentile(times, p) for p in (50, 95, 99))
        verdict = self.targets.at_most(f"{label}: p95 (n={len(times)})", p95, target_ms, " ms")
        cut = "" if len(times) == n else f", stopped after {self.args.endpoint_seconds:.0f} s"
        print(f"      {label:<46} p50 {p50:7.1f}  p95 {p95:7.1f}  p99 {p99:7.1f} ms  (n={len(times)}{cut})  "
              f"target p95 <= {target_ms:.0f} ms: {verdict}")
        ok = verdict == "PASS"
        if explain is not None and (not ok or self.args.explain_all):
            self.explain(label, explain)
        self.measured[label] = p95
        return {"p50": p50, "p95": p95, "p99": p99, "ok": ok}

    def explain(self, label: str, run) -> None:
        conn = connect(self.db_url)  # with the API's session settings (no JIT, no parallel plans): the plans it gets
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                recorder = ExplainCursor(cur)
                run(recorder)  # once to warm up, then again for the plans shown
                conn.rollback()  # each run in its own transaction, as the API runs it
                recorder.plans.clear()
                run(recorder)
            conn.rollback()
        finally:
            conn.close()
        for i, plan in enumerate(recorder.plans, 1):
            print(f"        EXPLAIN (ANALYZE, BUFFERS) for {label!r}, statement {i} of {len(recorder.plans)}:")
            for line in plan.splitlines():
                print(f"          {line}")

    def repository_id(self, name: str) -> int:
        with self.db().cursor() as cur:
            cur.execute("SELECT id FROM repositories WHERE name = %s", (name,))
            return cur.fetchone()[0]

    def latency(self) -> None:
        api = f"{self.api}/api/v1"
        big = self.catalog.big["name"]
        big_id = self.repository_id(big)
        list_args = dict(namespace=None, kind=None, q=None)

        print(f"      GET {api}/repositories?limit=50")
        first = self.measure(
            "repositories, first page (sort=name)", [(f"{api}/repositories", {"limit": 50})], LIST_TARGET_MS,
            lambda cur: reads.list_repositories(cur, ADMIN, **list_args, sort="name", after=None, limit=51))

        pages = self.args.deep_pages
        cursor, walked = None, time.monotonic()
        for _ in range(pages):
            params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
            cursor = self.get(f"{api}/repositories", params).json()["next_cursor"]
            if not cursor:
                raise RuntimeError(f"the repository list ended before {pages} pages of 50")
        walked = time.monotonic() - walked
        after = decode_cursor(cursor, reads.REPOSITORY_SORTS["name"][3])
        print(f"      followed next_cursor {pages} times (limit 50) in {walked:.1f} s "
              f"({walked / pages * 1000:.1f} ms a page); cursor now after {after[0]!r}")
        deep = self.measure(
            f"repositories, page {pages + 1} (cursor)", [(f"{api}/repositories", {"limit": 50, "cursor": cursor})],
            LIST_TARGET_MS,
            lambda cur: reads.list_repositories(cur, ADMIN, **list_args, sort="name", after=after, limit=51))
        ratio = deep["p95"] / first["p95"]
        verdict = self.targets.at_most("deep page / first page, p95", ratio, DEEP_RATIO_TARGET, "x", digits=2)
        print(f"      deep vs first page: p95 {deep['p95']:.1f} ms vs {first['p95']:.1f} ms = {ratio:.2f}x "
              f"(target <= {DEEP_RATIO_TARGET}x): {verdict}")

        self.measure("repositories, first page (sort=-updated)",
                     [(f"{api}/repositories", {"limit": 50, "sort": "-updated"})], LIST_TARGET_MS,
                     lambda cur: reads.list_repositories(cur, ADMIN, **list_args, sort="-updated", after=None, limit=51))
        # An organization's repositories: the mixed load's namespace-filtered lists, one URL at a time. A list
        # filtered by a subtree reads the whole subtree and sorts it (6,000 repositories an organization at 10M).
        organizations = sorted({row["namespace"].split("/")[0] for row in self.catalog.rows})
        picked = random.Random(self.args.seed + 2).sample(organizations, min(ORGANIZATIONS_IN_TURN, len(organizations)))
        print(f"      GET {api}/repositories?namespace=<organization>&limit=50[&sort=-updated]  "
              f"({len(picked)} organizations in turn)")
        for sort in ("name", "-updated"):
            self.measure(f"repositories of an organization (sort={sort})",
                         [(f"{api}/repositories", {"limit": 50, "namespace": org, "sort": sort}) for org in picked],
                         LIST_TARGET_MS,
                         lambda cur, sort=sort: reads.list_repositories(cur, ADMIN, namespace=picked[0], kind=None,
                                                                        q=None, sort=sort, after=None, limit=51))
        self.measure(f"repository detail ({BIG_REPOSITORY_TAGS:,}-tag repository)",
                     [(f"{api}/repositories/{big}", None)], LIST_TARGET_MS,
                     lambda cur: reads.repository(cur, ADMIN, big))

        print(f"      GET {api}/repositories/{big}/-/tags?limit=50[&sort=-pushed]")
        tag_args = dict(name=None, kind=None, after=None, limit=51)
        self.measure("tags of the big repository, first page (name)",
                     [(f"{api}/repositories/{big}/-/tags", {"limit": 50})], LIST_TARGET_MS,
                     lambda cur: reads.list_tags(cur, big_id, **tag_args, sort="name"))
        self.measure("tags of the big repository, sort=-pushed",
                     [(f"{api}/repositories/{big}/-/tags", {"limit": 50, "sort": "-pushed"})], LIST_TARGET_MS,
                     lambda cur: reads.list_tags(cur, big_id, **tag_args, sort="-pushed"))

        picks = self.catalog.sample_chart_versions(random.Random(self.args.seed + 1), 200)
        print(f"      GET {api}/charts/<name>/-/versions/<version>  ({len(picks)} different chart versions in turn)")
        self.measure("chart version detail", [(f"{api}/charts/{name}/-/versions/{version}", None)
                                              for name, version in picks], LIST_TARGET_MS,
                     lambda cur: reads.chart_version(cur, ADMIN, *picks[0]))
        print(f"      GET {api}/charts?limit=50")
        self.measure("chart list, first page", [(f"{api}/charts", {"limit": 50})], LIST_TARGET_MS,
                     lambda cur: reads.list_charts(cur, ADMIN, namespace=None, q=None, after=None, limit=51))

        print(f"      GET {api}/search?q=...  (first page of 50 hits, with facets)")
        searches = {}
        for label, q in SEARCHES:
            def run(cur, q=q):
                catalog_search.search(cur, ADMIN, q=q, namespace=None, kind=None, after=None, limit=51)
            searches[q] = self.measure(f"search, {label} (q={q})", [(f"{api}/search", {"q": q})], SEARCH_TARGET_MS, run)
        self.permission_cost(first, searches)
        self.hidden_cost()

    def permission_cost(self, first_page: dict, searches: dict) -> None:
        """The same requests as a reporter on GRANTED_PREFIXES namespaces: the cost of the permission filter."""
        api = f"{self.api}/api/v1"
        access = self.reporter_access
        print(f"      the same requests by a reporter on {GRANTED_PREFIXES:,} namespaces, against the administrator's")
        cases = [("repositories, first page", f"{api}/repositories", {"limit": 50}, first_page, LIST_TARGET_MS,
                  lambda cur: reads.list_repositories(cur, access, namespace=None, kind=None, q=None, sort="name",
                                                        after=None, limit=51))]
        cases += [(f"search (q={q})", f"{api}/search", {"q": q}, searches[q], SEARCH_TARGET_MS,
                   lambda cur, q=q: catalog_search.search(cur, access, q=q, namespace=None, kind=None, after=None,
                                                          limit=51))
                  for _, q in SEARCHES]
        for label, url, params, baseline, target, run in cases:
            result = self.measure(f"{label}, reporter", [(url, params)], target, run, headers=self.reporter)
            ratio = result["p95"] / baseline["p95"]
            verdict = self.targets.at_most(f"permission filter on {label}, reporter / administrator p95", ratio,
                                           PERMISSION_COST_TARGET, "x", digits=2)
            print(f"      permission filter on {label}: p95 {result['p95']:.1f} ms vs {baseline['p95']:.1f} ms = "
                  f"{ratio:.2f}x (target <= {PERMISSION_COST_TARGET}x): {verdict}")

    def hidden_cost(self) -> None:
        """What repositories hidden from a caller cost them: nothing, or their number could be timed.

        The reporter lists a namespace of HIDDEN_REPOSITORIES repositories they may not see, against one that
        does not exist, and searches a word only those repositories hold, against a word nothing holds; the
        medians must be within HIDDEN_COST_TARGET of each other.
        """
        api = f"{self.api}/api/v1"
        print(f"      a reporter's requests about {HIDDEN_REPOSITORIES:,} repositories hidden from them, against the "
              "same about nothing")
        pairs = [
            ("list of a hidden namespace", (f"{api}/repositories", {"namespace": HIDDEN_NAMESPACE}),
             "list of a missing namespace", (f"{api}/repositories", {"namespace": MISSING_NAMESPACE}), LIST_TARGET_MS),
            ("search matching hidden repositories only", (f"{api}/search", {"q": HIDDEN_WORD}),
             "search matching nothing", (f"{api}/search", {"q": NO_MATCH_WORD}), SEARCH_TARGET_MS),
        ]
        for hidden_label, hidden, missing_label, missing, target in pairs:
            hidden_result = self.measure(f"{hidden_label}, reporter", [hidden], target, headers=self.reporter, empty=True)
            missing_result = self.measure(f"{missing_label}, reporter", [missing], target, headers=self.reporter,
                                          empty=True)
            ratio = hidden_result["p50"] / missing_result["p50"]
            verdict = self.targets.at_most(f"hidden repositories' cost, {hidden_label}, p50 against {missing_label}",
                                           ratio, HIDDEN_COST_TARGET, "x", digits=2)
            print(f"      hidden repositories' cost, {hidden_label}: p50 {hidden_result['p50']:.1f} ms vs "
                  f"{missing_result['p50']:.1f} ms = {ratio:.2f}x (target <= {HIDDEN_COST_TARGET}x): {verdict}")

    # -- 3. churn -----------------------------------------------------------------

    def churn(self) -> None:
        """A day of a busy registry: pushes, tag moves, deletes and untags spread over the catalog, written by
        ocicat's own statements (ocicat.catalog.writes), one transaction per event as the worker writes them,
        with the repository's refresh after each; autovacuum runs as it would, nothing is vacuumed by hand.

        A pushed manifest is a copy of a random one of its repository (its content, layers and chart row) under
        a new digest, as a rebuild is; a chart's copy gets a new version.
        """
        count = self.args.churn
        rng = random.Random(self.args.seed + 3)
        conn = psycopg2.connect(self.db_url, connect_timeout=5)
        done = {kind: 0 for kind, _ in CHURN_MIX}
        chart_columns = None
        started = time.monotonic()
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute("SELECT max(id) AS top FROM manifests")
                top = cur.fetchone()["top"]
                cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'helm_charts'"
                            " AND column_name NOT IN ('manifest_id', 'version', 'prerelease', 'version_key')")
                chart_columns = ", ".join(r["column_name"] for r in cur.fetchall())
            conn.commit()
            kinds, weights = zip(*CHURN_MIX)
            for i in range(count):
                kind = rng.choices(kinds, weights)[0]
                at = datetime.now(timezone.utc)
                with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    cur.execute(CHURN_SQL["pick"], {"from": rng.randint(1, top)})
                    picked = cur.fetchone()
                    if picked is None:
                        continue
                    repository_id, digest = picked["repository_id"], picked["digest"]
                    writes.lock_repository(cur, picked["name"])
                    if kind == "push":
                        new_digest = "sha256:" + hashlib.sha256(f"churn-{self.args.seed}-{i}".encode()).hexdigest()
                        cur.execute(CHURN_SQL["copy manifest"], {"id": picked["id"], "digest": new_digest, "at": at})
                        copy = cur.fetchone()["id"]
                        cur.execute(CHURN_SQL["copy layers"], {"id": picked["id"], "copy": copy})
                        tag = f"churn-{i}"
                        if picked["kind"] == "helm-chart":
                            tag = f"{i % 3}.{1000 + i}.0"
                            prerelease, key = version_order(tag)
                            cur.execute(f"INSERT INTO helm_charts (manifest_id, version, prerelease, version_key, "
                                        f"{chart_columns}) SELECT %s, %s, %s, %s, {chart_columns} FROM helm_charts"
                                        f" WHERE manifest_id = %s", (copy, tag, prerelease, key, picked["id"]))
                        writes.set_tag(cur, repository_id, tag, new_digest, at)
                    elif kind == "move":
                        cur.execute(CHURN_SQL["another manifest"], {"repository": repository_id, "digest": digest})
                        other = cur.fetchone()
                        cur.execute(CHURN_SQL["a tag"], {"repository": repository_id})
                        tag = cur.fetchone()
                        if other is None or tag is None:
                            continue
                        writes.set_tag(cur, repository_id, tag["name"], other["digest"], at)
                    elif kind == "delete":
                        writes.delete_manifest(cur, repository_id, digest, at)
                    else:
                        cur.execute(CHURN_SQL["a tag"], {"repository": repository_id})
                        tag = cur.fetchone()
                        if tag is None:
                            continue
                        writes.set_tag(cur, repository_id, tag["name"], None, at)
                    writes.refresh_repositories(cur, {repository_id: at})
                done[kind] += 1
        finally:
            conn.close()
        seconds = time.monotonic() - started
        print(f"      {sum(done.values()):,} events in {seconds:.1f} s ({sum(done.values()) / seconds:.0f}/s): "
              + ", ".join(f"{n:,} {kind}" for kind, n in done.items()))
        self.print_sizes(self.db())

    # -- 4. mixed load ------------------------------------------------------------

    def mixed_load(self) -> None:
        """Every principal's seeded mix of requests (MIX) at 1, 8 and 32 concurrent clients: throughput, p50,
        p95, p99, what answered 404 (a repository the caller may not see, as links shared across teams are)."""
        n = self.args.mix_requests
        warm_up = max(20, n // 10)
        catalog = self.visible(ADMIN)
        print(f"      {n} timed requests per row after {warm_up} untimed; each client a thread with its own "
              "requests.Session, in this process")
        print(f"      {'principal':<24} {'clients':>7} {'n':>6} {'req/s':>7} {'p50':>7} {'p95':>7} {'p99':>7} ms "
              f"{'404':>5} {'errors':>6}  slowest kind: p95 (n)")
        for principal in self.principals:
            pool = catalog if principal.view.everything else self.visible(principal.view)
            for clients in MIX_CLIENTS:
                rng = random.Random(f"{self.args.seed}-{principal.label}-{clients}")
                planned = [self.mixed_request(rng, pool, catalog) for _ in range(warm_up + n)]
                result = self.drive(planned[:warm_up], planned[warm_up:], clients, principal.headers)
                times = [t for _, t, _ in result["times"]]
                by_kind: dict[str, list[float]] = {}
                for kind, t, _ in result["times"]:
                    by_kind.setdefault(kind, []).append(t)
                slowest = max(by_kind, key=lambda kind: percentile(by_kind[kind], 95))
                p50, p95, p99 = (percentile(times, p) for p in (50, 95, 99))
                verdict = ""
                if clients == 1:
                    verdict = "  " + self.targets.at_most(f"mixed load, {principal.label}, 1 client: p95 (n={len(times)})",
                                                          p95, MIX_TARGET_MS, " ms")
                print(f"      {principal.label:<24} {clients:>7} {len(times):>6} {result['rate']:>7.1f} {p50:>7.1f} "
                      f"{p95:>7.1f} {p99:>7.1f}    {result['404']:>5} {len(result['errors']):>6}  {slowest}: "
                      f"{percentile(by_kind[slowest], 95):.1f} ms ({len(by_kind[slowest])}){verdict}")
                if clients == 1:  # where a miss comes from: every kind's p95, and the slowest request
                    kind, t, url = max(result["times"], key=lambda answer: answer[1])
                    print(f"{'':>33}p95 by kind: " + ", ".join(f"{k} {percentile(v, 95):.1f}" for k, v in by_kind.items())
                          + f" ms; slowest {t:.0f} ms: GET {url}")
                self.targets.holds(f"mixed load, {principal.label}, {clients} clients: every answer 200 or 404 "
                                   f"({len(result['errors'])} others{': ' + result['errors'][0] if result['errors'] else ''})",
                                   not result["errors"])

    def visible(self, view: Visibility) -> dict:
        """What a caller may see, by the API's own filter: repositories, chart versions, namespaces."""
        with self.db().cursor() as cur:
            cur.execute(f"SELECT r.name FROM repositories r WHERE r.manifest_count > 0 AND {VISIBLE}", view.params)
            repositories = sorted(r[0] for r in cur.fetchall())
            cur.execute(f"SELECT r.name, c.version FROM repositories r JOIN manifests m ON m.repository_id = r.id"
                        f" JOIN helm_charts c ON c.manifest_id = m.id WHERE {VISIBLE} ORDER BY 1, 2", view.params)
            chart_versions = cur.fetchall()
        return {"repositories": repositories, "chart_versions": chart_versions,
                "namespaces": sorted({name.rpartition("/")[0] for name in repositories})}

    def mixed_request(self, rng: random.Random, pool: dict, catalog: dict) -> tuple[str, str, dict | None]:
        """One request of the mix: a page, a detail or a search, about what the caller may see (and one in ten
        about any repository of the catalog)."""
        api = f"{self.api}/api/v1"
        what = rng.choices([kind for kind, _ in MIX], [weight for _, weight in MIX])[0]
        if not pool["repositories"]:
            what = "search"
        repository = rng.choice((catalog if rng.random() < 0.1 else pool)["repositories"] or [MISSING_NAMESPACE])
        namespace = rng.choice(pool["namespaces"]) if pool["namespaces"] else MISSING_NAMESPACE
        if rng.random() < 0.5:
            namespace = namespace.split("/")[0]  # the organization, a wider subtree
        if what == "repositories":
            params = {"limit": rng.choice((20, 50)), "sort": rng.choice(("name", "-updated"))}
            if rng.random() < 0.4:
                params["namespace"] = namespace
            if rng.random() < 0.15:
                params["kind"] = rng.choice(("helm-chart", "image"))
            return what, f"{api}/repositories", params
        if what == "repository":
            return what, f"{api}/repositories/{repository}", None
        if what == "tags":
            return what, f"{api}/repositories/{repository}/-/tags", {"limit": 50,
                                                                      "sort": rng.choice(("name", "-pushed"))}
        if what == "chart version" and pool["chart_versions"]:
            name, version = rng.choice(pool["chart_versions"])
            return what, f"{api}/charts/{name}/-/versions/{version}", None
        if what == "charts":
            return what, f"{api}/charts", {"limit": 50, **({"namespace": namespace} if rng.random() < 0.5 else {})}
        word = rng.choice(SEARCH_WORDS)
        if rng.random() < 0.2:
            word = word[:rng.randint(3, 5)]  # a prefix, as typed
        return "search", f"{api}/search", {"q": word, **({"namespace": namespace} if rng.random() < 0.3 else {})}

    def drive(self, warm_up: list, timed: list, clients: int, headers: dict) -> dict:
        """The requests on ``clients`` threads at once, each with its own session: the timed ones' kinds and latencies
        (ms), throughput, 404s, and any other answer as an error."""
        local = threading.local()

        def get(request) -> tuple[str, float, int, str]:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.trust_env = False
                local.session.headers.update(headers)
            kind, url, params = request
            started = time.perf_counter()
            response = local.session.get(url, params=params, timeout=60)
            _ = response.content
            return kind, (time.perf_counter() - started) * 1000, response.status_code, response.url

        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(get, warm_up))
            started = time.perf_counter()
            answers = list(pool.map(get, timed))
            wall = time.perf_counter() - started
        return {"times": [(kind, t, url) for kind, t, _, url in answers], "rate": len(answers) / wall,
                "404": sum(status == 404 for _, _, status, _ in answers),
                "errors": [f"{status} {url}" for _, _, status, url in answers if status not in (200, 404)]}

    # -- 5. registry comparison -----------------------------------------------------

    def registry_listing(self, session: requests.Session) -> tuple[set, int]:
        """Every chart with its metadata from the registry's own API, as a UI must collect it."""
        base = self.registry.url
        charts, calls = set(), 0
        url = f"{base}/v2/_catalog?n=100"
        repositories = []
        while url:
            response = session.get(url, timeout=30)
            response.raise_for_status()
            calls += 1
            repositories += response.json()["repositories"]
            link = response.headers.get("Link")
            url = urljoin(base, link.split(";")[0].strip("<> ")) if link else None
        for repository in repositories:
            response = session.get(f"{base}/v2/{repository}/tags/list", timeout=30)
            response.raise_for_status()
            calls += 1
            for tag in response.json()["tags"] or []:
                manifest = session.get(f"{base}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT},
                                       timeout=30)
                manifest.raise_for_status()
                config = session.get(f"{base}/v2/{repository}/blobs/{manifest.json()['config']['digest']}", timeout=30)
                config.raise_for_status()
                calls += 2
                meta = config.json()
                charts.add((repository, meta["name"], meta["version"], meta.get("appVersion"), meta.get("description"),
                            tuple(meta.get("keywords") or ())))
        return charts, calls

    def ocicat_listing(self, session: requests.Session) -> tuple[set, int]:
        charts, calls, cursor = set(), 0, None
        while True:
            params = {"namespace": REGISTRY_NAMESPACE, "limit": MAX_LIMIT, **({"cursor": cursor} if cursor else {})}
            response = session.get(f"{self.api}/api/v1/charts", params=params, timeout=30,
                                   headers={"Authorization": self.http.headers["Authorization"]})
            response.raise_for_status()
            calls += 1
            body = response.json()
            for c in body["items"]:
                charts.add((c["repository"], c["name"], c["version"], c["app_version"], c["description"],
                            tuple(c["keywords"])))
            cursor = body["next_cursor"]
            if not cursor:
                return charts, calls

    def registry_comparison(self) -> None:
        count = self.args.registry_charts
        vocab = Vocabulary(random.Random(self.args.seed + 2))
        self.registry.start()
        worker = self.start("worker")
        push = requests.Session()
        push.trust_env = False
        started = time.monotonic()
        for i in range(count):
            name = f"{SOFTWARE[i % len(SOFTWARE)]}-{i:03d}"
            push_chart(self.registry.url, f"{REGISTRY_NAMESPACE}/{name}", "1.4.2", "1.4.2", session=push,
                       appVersion=f"{i % 7}.{i % 13}.0", description=vocab.description(), keywords=vocab.keywords(),
                       maintainers=vocab.maintainers("regbench"), home=f"https://git.example.com/{name}",
                       icon=f"https://assets.example.com/icons/{name}.svg")
        pushed = time.monotonic() - started
        conn = self.db()

        def indexed() -> bool:
            with conn.cursor() as cur:
                cur.execute("""
                    SELECT (SELECT count(*) FROM repositories r JOIN manifests m ON m.repository_id = r.id
                              JOIN helm_charts c ON c.manifest_id = m.id JOIN tags t
                                ON t.repository_id = r.id AND t.digest = m.digest
                             WHERE r.namespace = %s),
                           (SELECT count(*) FROM event_queue)
                """, (REGISTRY_NAMESPACE,))
                charts, queued = cur.fetchone()
            if worker.process.poll() is not None:
                raise RuntimeError(f"ocicat worker exited with {worker.process.returncode}:\n{worker.output()[-4000:]}")
            return charts >= count and queued == 0

        wait_until(indexed, timeout=max(60.0, count * 0.5), interval=0.1, what=f"{count} charts indexed by the worker")
        print(f"      pushed {count} charts ({count} repositories x 1 version, {REGISTRY_NAMESPACE}/<name>:1.4.2, "
              f"push_chart) in {pushed:.1f} s; `ocicat worker` indexed all {time.monotonic() - started:.1f} s "
              f"after the first push")
        worker.stop()

        session = requests.Session()
        session.trust_env = False
        from_registry, registry_calls = self.registry_listing(session)
        from_ocicat, ocicat_calls = self.ocicat_listing(session)
        if from_registry != from_ocicat or len(from_registry) != count:
            raise RuntimeError(f"the registry and ocicat list different charts: {len(from_registry)} vs "
                               f"{len(from_ocicat)}; e.g. {sorted(from_registry ^ from_ocicat)[:3]}")
        print(f"      both list the same {count} charts (repository, name, version, appVersion, description, "
              f"keywords)")

        rounds = self.args.rounds
        registry_times, ocicat_times = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            self.registry_listing(session)
            registry_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            self.ocicat_listing(session)
            ocicat_times.append(time.perf_counter() - t0)
        reg, oci = statistics.median(registry_times), statistics.median(ocicat_times)
        ratio = reg / oci
        print(f"      registry API: {registry_calls} requests (_catalog n=100 pages, tags/list x {count}, manifest x "
              f"{count}, config blob x {count}): median {reg * 1000:.0f} ms of {rounds} rounds "
              f"({min(registry_times) * 1000:.0f}-{max(registry_times) * 1000:.0f})")
        print(f"      ocicat:       {ocicat_calls} requests (GET /api/v1/charts?namespace={REGISTRY_NAMESPACE}"
              f"&limit={MAX_LIMIT}, following next_cursor, in the {len(self.catalog.rows):,}-repository catalog): "
              f"median {oci * 1000:.1f} ms ({min(ocicat_times) * 1000:.1f}-{max(ocicat_times) * 1000:.1f})")
        verdict = self.targets.at_least(f"registry API walk / ocicat chart list, medians of {rounds} rounds", ratio,
                                        REGISTRY_RATIO_TARGET, "x", digits=0)
        print(f"      ocicat is {ratio:.0f}x faster (target >= {REGISTRY_RATIO_TARGET:.0f}x): {verdict}")

    # -- all of it -------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        print(f"ocicat API benchmark  (run {self.run_id}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')})")
        for line in machine_and_versions(args.database_server):
            print(line)
        print(f"postgresql conf: {self.server_settings()}")
        print(f"setup:           {args.namespaces:,} namespaces x {REPOS_PER_NAMESPACE} repositories, {args.tags:,} "
              f"tags, {args.charts:,} chart versions; database {self.db_name}; API on {self.api}")
        print()
        # The registry's port is known before the API starts (OCICAT_REGISTRY_URL); it is started in phase 5.
        self.registry = Registry(notify_url=f"{self.api}/api/v1/events", secret=self.secret)

        print("[1/5] bulk load (migrations, COPY of the plan, INSERT ... SELECT, the worker's search refresh)")
        self.load()
        print()

        print(f"[2/5] latency, straight after the bulk load and VACUUM: `ocicat api` (2 gunicorn workers), sequential "
              f"requests from one requests.Session, {args.requests} timed per endpoint after a warm-up")
        api = self.start("api")
        try:
            wait_http(f"{self.api}/healthz", timeout=30)
        except AssertionError:
            raise RuntimeError(f"ocicat api did not start:\n{api.output()[-4000:]}") from None
        self.latency()
        print()
        if self.latency_only:
            return

        print(f"[3/5] a day of churn: {args.churn:,} events through ocicat.catalog.writes while the API runs")
        self.churn()
        print()

        print(f"[4/5] mixed load after the churn: {len(self.principals)} principals on the private catalog, "
              f"{' / '.join(map(str, MIX_CLIENTS))} concurrent clients, a seeded mix of "
              + ", ".join(f"{w}% {kind}" for kind, w in MIX))
        self.mixed_load()
        print()

        print(f"[5/5] registry comparison: {args.registry_charts} charts with their metadata, registry API walk vs "
              "one ocicat list")
        self.registry_comparison()


class Scales:
    """A catalog larger than the 1M one, measured against a 1M catalog in the same invocation: the 1M catalog's load
    and latency table first (its database dropped before the large one is loaded), then the whole run at the large
    one, then the latency tables side by side, each measure's growth a ratio from one run."""

    def __init__(self, args):
        self.args = args
        ratio = args.tags / BASELINE_TAGS
        baseline = argparse.Namespace(**{**vars(args), "tags": BASELINE_TAGS, "charts": round(args.charts / ratio),
                                         "namespaces": round(args.namespaces / ratio)})
        self.baseline = Bench(baseline, latency_only=True)
        self.large = None
        self.targets = self.baseline.targets
        self.failed = False

    def run(self) -> None:
        print(f"=== baseline: {BASELINE_TAGS:,} tags, in the same invocation as the {self.args.tags:,}-tag run ===")
        self.baseline.run()
        self.baseline.cleanup()
        print(f"=== {self.args.tags:,} tags ===")
        self.large = Bench(self.args)
        self.large.targets = self.targets
        self.large.run()
        small, large = self.baseline.measured, self.large.measured
        print(f"\nside by side, p95 (ms): {BASELINE_TAGS:,} tags against {self.args.tags:,} tags, from this run")
        for label in small:
            if label in large:
                ratio = large[label] / small[label]
                verdict = self.targets.at_most(f"{label}: {self.args.tags:,} / {BASELINE_TAGS:,} tags, p95", ratio,
                                               SCALE_RATIO_TARGET, "x", digits=2)
                print(f"      {label:<50} {small[label]:7.1f} {large[label]:7.1f}  {ratio:5.2f}x  "
                      f"(target <= {SCALE_RATIO_TARGET}x): {verdict}")

    def cleanup(self) -> None:
        (self.baseline if self.large is None else self.large).cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=1_000_000, help="tags in the catalog (default 1,000,000)")
    parser.add_argument("--charts", type=int, help="chart versions (default: a tenth of --tags)")
    parser.add_argument("--namespaces", type=int,
                        help=f"namespaces, of {REPOS_PER_NAMESPACE} repositories each (default: --tags / 100)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint (default 200)")
    parser.add_argument("--deep-pages", type=int, default=1000, help="pages of 50 to follow for the deep cursor")
    parser.add_argument("--registry-charts", type=int, default=500, help="charts for the registry comparison")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the registry comparison (median shown)")
    parser.add_argument("--churn", type=int, default=20_000,
                        help="events of the simulated day of churn before the mixed load (default 20,000)")
    parser.add_argument("--mix-requests", type=int, default=1000,
                        help="timed requests per principal and concurrency level of the mixed load (default 1000)")
    parser.add_argument("--endpoint-seconds", type=float, default=60.0,
                        help="stop timing one endpoint after this many seconds (default 60)")
    parser.add_argument("--database-server", default=os.environ.get("OCICAT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server to create the run's database on (a URL to an existing database, "
                             "used for CREATE/DROP DATABASE)")
    parser.add_argument("--seed", type=int, default=20240501, help="random seed of the synthetic catalog")
    parser.add_argument("--explain-all", action="store_true", help="show query plans for every endpoint, not only failures")
    parser.add_argument("--time-limit", type=float, default=1800.0,
                        help="abort the whole run after this many seconds (default 1800)")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--keep-logs", action="store_true", help="keep the ocicat and registry logs")
    add_targets_argument(parser)
    args = parser.parse_args()
    args.charts = args.tags // 10 if args.charts is None else args.charts
    args.namespaces = args.tags // 100 if args.namespaces is None else args.namespaces
    if (args.namespaces < 1 or args.charts < args.namespaces or args.requests < 1 or args.deep_pages < 1
            or args.churn < 0 or args.mix_requests < 1 or args.rounds < 1):
        parser.error("need --namespaces >= 1, --charts >= --namespaces (a version per chart repository), "
                     "--requests, --deep-pages, --mix-requests and --rounds >= 1, --churn >= 0")
    if args.deep_pages * 50 >= args.namespaces * REPOS_PER_NAMESPACE:
        parser.error(f"--deep-pages {args.deep_pages} of 50 needs more than {args.deep_pages * 50} repositories; "
                     f"raise --namespaces")

    return run_bounded(Scales(args) if args.tags > BASELINE_TAGS else Bench(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
