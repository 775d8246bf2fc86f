"""The catalog as classic Helm chart repositories, one per namespace: which chart versions an ``index.yaml`` lists,
whether it changed, and which archive a chart URL names. The SQL behind api.helm_repository.

Helm keys an index by chart name, so one index holds one repository per name. Where several repositories under the
namespace carry charts of the same name, the shallowest wins, then one whose last path part is the chart's name,
then the first by name; the others are listed by the index of their own namespace. An archive request is resolved
by the same rule over its own namespace, so a URL an index lists always names the archive it described.

Listed are the chart versions a tag points at (what ``helm pull oci://`` finds), that indexed without error, whose
version is SemVer (Helm drops any other from an index) and whose name can be a file name.
"""

from __future__ import annotations

import re

from ocicat.oci.media_types import HELM_CHART_LAYERS, HELM_PROVENANCE

from .reads import IN_SUBTREE, subtree
from .visibility import VISIBLE, Visibility

# What Helm accepts as a chart's name, and what can be part of "<name>-<version>.tgz" in a URL.
CHART_NAME = "^[A-Za-z0-9][A-Za-z0-9._-]*$"
# What "<name>-<version>" of an archive's file name can be (anything else is no chart's), and where it may split:
# before a version's first digit (Helm allows a leading "v").
_FILE_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,249}-v?[0-9][0-9A-Za-z.+-]{0,127}\Z")
_VERSION_START = re.compile(r"-(?=v?[0-9])")

_SCOPE = f"""
r.latest_chart_id IS NOT NULL AND {VISIBLE}
AND (CASE WHEN %(recursive)s THEN {IN_SUBTREE} ELSE r.namespace = %(own_namespace)s END)
"""

# Chart version order as Helm sorts an index (newest first, pure SemVer precedence): unlike the catalog's own
# order (reads.list_chart_versions: releases before every prerelease), a release sorts above its own prereleases
# only. A release's key gains "\x02", above the "\x01" that starts a prerelease's identifiers (indexer.helm.version_order).
_HELM_ORDER = """v.version_key || CASE WHEN v.prerelease THEN '' ELSE E'\\x02' END COLLATE "C" DESC,
                 v.pushed_at DESC, v.manifest_id DESC"""

# The chart versions an index lists (narrow rows: the entries are written from the chosen ones only).
_CHOSEN = f"""
WITH v AS MATERIALIZED (
    SELECT r.id AS repository_id, r.name AS repository, r.namespace, m.id AS manifest_id, m.pushed_at,
           c.name, c.version, c.prerelease, c.version_key,
           archive.digest AS archive_digest, archive.size_bytes AS archive_size
      FROM repositories r
      JOIN manifests m ON m.repository_id = r.id AND m.subject_digest IS NULL AND m.error IS NULL
      JOIN helm_charts c ON c.manifest_id = m.id
      CROSS JOIN LATERAL (SELECT l.digest, l.size_bytes FROM layers l
                           WHERE l.manifest_id = m.id AND l.media_type = ANY (%(archive_types)s)
                           ORDER BY l.position LIMIT 1) archive
     WHERE {_SCOPE}
       AND c.prerelease IS NOT NULL AND c.name ~ %(chart_name)s
       AND (%(names)s::text[] IS NULL OR c.name = ANY (%(names)s::text[]))
       AND EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id AND t.digest = m.digest)
),
winners AS (
    SELECT DISTINCT ON (v.name) v.name, v.repository_id FROM v
     ORDER BY v.name, length(v.repository) - length(replace(v.repository, '/', '')),
              split_part(v.repository, '/', -1) <> v.name, v.repository
),
chosen AS (
    SELECT DISTINCT ON (v.name, v.version) v.* FROM v JOIN winners w USING (name, repository_id)
     WHERE %(versions)s::text[] IS NULL
        OR (v.name, v.version) IN (SELECT * FROM unnest(%(names)s::text[], %(versions)s::text[]))
     ORDER BY v.name, v.version, v.pushed_at DESC, v.manifest_id DESC
)
"""

# Entries: the chart's own (helm_charts.index_entry), then when the catalog saw it pushed (as `helm repo index`
# dates a chart when it indexes it), the archive's SHA-256 (hex: Helm 4 caches charts by it, and a chart layer's
# digest is exactly that), and the archive's URL relative to the index: its own namespace's
# charts/<name>-<version>.tgz, so that Helm sends the index's credentials with it (same origin) and a chart has one
# URL in every index.
_ENTRIES = _CHOSEN + f"""
SELECT v.name, left(coalesce(c.index_entry, helm_index_entry(c)), -1)
               || ',"created":"' || to_char(v.pushed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
               || CASE WHEN v.archive_digest LIKE 'sha256:%%'
                       THEN ',"digest":"' || substr(v.archive_digest, 8) || '"' ELSE '' END
               || ',"urls":[' || to_json(CASE WHEN v.namespace = %(own_namespace)s THEN ''
                                              ELSE substr(v.namespace, %(below)s) || '/' END
                                         || 'charts/' || v.name || '-' || v.version || '.tgz')::text || ']}}'
  FROM chosen v JOIN helm_charts c ON c.manifest_id = v.manifest_id
 ORDER BY v.name, {_HELM_ORDER}
"""

_ARCHIVE = _CHOSEN + """
SELECT v.repository, v.archive_digest, v.archive_size, prov.digest AS prov_digest, prov.size_bytes AS prov_size
  FROM chosen v
  LEFT JOIN LATERAL (SELECT l.digest, l.size_bytes FROM layers l
                      WHERE l.manifest_id = v.manifest_id AND l.media_type = %(prov_type)s
                      ORDER BY l.position LIMIT 1) prov ON true
"""

_FINGERPRINT = f"""
SELECT md5(string_agg(r.id || ':' || r.change_serial, ',' ORDER BY r.id)) AS fingerprint,
       max(r.updated_at) AS changed_at
  FROM repositories r WHERE {_SCOPE}
"""


def _params(seen: Visibility, namespace: str, recursive: bool) -> dict:
    return {**seen.within(namespace or None).params, **subtree(namespace or None), "recursive": recursive,
            "own_namespace": namespace, "below": len(namespace) + 2 if namespace else 1}


def fingerprint(cur, seen: Visibility, namespace: str, recursive: bool) -> dict | None:
    """What an index's contents depend on, in one index-range read: the chart repositories the caller may see
    under ``namespace`` ('' the whole catalog) and each one's change number (migration 0014). None when there is
    none. ``fingerprint`` changes whenever the index would; ``changed_at`` is the latest event among them."""
    cur.execute(_FINGERPRINT, _params(seen, namespace, recursive))
    row = cur.fetchone()
    return row if row["fingerprint"] is not None else None


def entries(cur, seen: Visibility, namespace: str, recursive: bool, itersize: int = 2000):
    """(chart name, entry as JSON text) of every chart version the index lists, by chart name, newest first in
    Helm's order, in ``cur``'s transaction. Streamed through a server-side cursor: a namespace can hold 100,000
    versions."""
    cur.execute("SET LOCAL work_mem = '64MB'")  # the sorts of 100,000 entries, in memory
    with cur.connection.cursor(name="helm_repository_entries") as rows:
        rows.itersize = itersize
        rows.execute(_ENTRIES, {**_params(seen, namespace, recursive), **_common(None, None)})
        yield from rows


def archive(cur, seen: Visibility, namespace: str, stem: str) -> dict | None:
    """The chart version behind ``<stem>.tgz`` (``<name>-<version>``) in ``namespace``'s own index, or None.

    A name and a version can both hold "-" ("my-chart-1.0.0-rc.1"): every place a version can start is tried, in
    one statement, and where two charts would have the same file name the one with the shorter name is meant.
    """
    if not _FILE_STEM.match(stem):
        return None
    splits = [(stem[:m.start()], stem[m.end():]) for m in _VERSION_START.finditer(stem)]
    cur.execute(_ARCHIVE + " ORDER BY length(v.name) LIMIT 1",
                {**_params(seen, namespace, False), **_common([n for n, _ in splits], [v for _, v in splits])})
    return cur.fetchone()


def _common(names: list[str] | None, versions: list[str] | None) -> dict:
    return {"archive_types": list(HELM_CHART_LAYERS), "prov_type": HELM_PROVENANCE, "chart_name": CHART_NAME,
            "names": names, "versions": versions}
