"""Chart versions compared (ocicat.compare) from what the catalog stores, and the upgrade reports kept with them.

A version's report compares it with the version a user most likely upgrades from: the highest *release* below it in
SemVer order (for a prerelease too: 2.0.0-rc.1 is tried by people running 1.x), else, with no release below, the
highest prerelease below. It is written when the version is indexed (in the worker's transaction, under the
repository's lock), and rewritten for the versions above it whose base the new version becomes, so a version pushed
late (a 1.4.1 after 2.0.0) corrects the reports it falls into. A version that is not SemVer, or indexed with an
error, has none and is nobody's base.
"""

from __future__ import annotations

from psycopg2.extras import Json

from .. import compare

# Versions a new version can become the base of, rewritten at its push; more is a repository pushed far out of order,
# where the rest keep their report against the base they had.
MAX_REWRITTEN = 20

_SNAPSHOT = """
SELECT m.id AS manifest_id, m.repository_id, m.digest, m.pushed_at, c.version, c.version_key, c.prerelease, c.name,
       c.api_version, c.app_version, c.kube_version, c.description, c.type, c.home, c.icon, c.deprecated, c.keywords,
       c.sources, c.maintainers, c.dependencies, c.chart_lock, c.values_schema, c.artifacthub, c.values_parsed,
       CASE WHEN c.values_parsed IS NULL THEN c.values_yaml END AS values_yaml,
       CASE WHEN f.files = '{}' AND (c.templates <> '[]' OR c.crds <> '[]') THEN NULL ELSE f.files END AS files
  FROM manifests m
  JOIN helm_charts c ON c.manifest_id = m.id
 CROSS JOIN LATERAL (
       SELECT coalesce(jsonb_object_agg(path, jsonb_build_object('digest', encode(digest, 'hex'), 'size', size,
                                                                 'truncated', truncated)), '{}') AS files
         FROM chart_files WHERE manifest_id = m.id) f
 WHERE m.id = ANY (%s)
"""

# SemVer precedence of helm_charts.version_key (as functions/chart_version_below.sql): the release part, then a
# release above its own prereleases, then prereleases in key order.
_SEMVER_ORDER = """split_part(version_key, E'\\x01', 1) COLLATE "C", strpos(version_key, E'\\x01') = 0,
                  version_key COLLATE "C" """
_SEMVER_ORDER_DESC = """split_part(version_key, E'\\x01', 1) COLLATE "C" DESC, strpos(version_key, E'\\x01') = 0 DESC,
                  version_key COLLATE "C" DESC"""

# Candidates for a version's base: SemVer chart versions of the repository, indexed without error.
_BASES = """
  FROM manifests m JOIN helm_charts c ON c.manifest_id = m.id
 WHERE m.repository_id = %(repository_id)s AND m.subject_digest IS NULL AND m.error IS NULL
   AND c.version_key IS NOT NULL
"""


def snapshots(cur, manifest_ids: list[int]) -> dict[int, dict]:
    """What comparing needs of each chart version (files: None for a version indexed before contents were kept)."""
    cur.execute(_SNAPSHOT, (manifest_ids,))
    return {row["manifest_id"]: row for row in cur.fetchall()}


def source_loader(cur):
    """``load`` for compare.compare: the stored sources with these (hex) digests."""
    def load(digests: set[str]) -> dict[str, dict]:
        cur.execute("SELECT encode(digest, 'hex') AS digest, content, document FROM chart_sources"
                    " WHERE digest = ANY (%s)", ([bytes.fromhex(d) for d in digests],))
        return {row["digest"]: row for row in cur.fetchall()}
    return load


def files(cur, manifest_id: int) -> list[dict]:
    """A version's templates and CRDs, with their contents, by path."""
    cur.execute("SELECT f.path, f.size, f.truncated, s.content FROM chart_files f"
                " JOIN chart_sources s ON s.digest = f.digest WHERE f.manifest_id = %s ORDER BY f.path",
                (manifest_id,))
    return cur.fetchall()


def changelog(cur, repository_id: int, low: dict, high: dict) -> list[dict]:
    """The ``artifacthub.io/changes`` of every version above ``low`` up to ``high`` (snapshots), newest first."""
    cur.execute(
        f"""
        SELECT version, changes FROM (
            SELECT DISTINCT ON (c.version_key) c.version, c.version_key, c.artifacthub->'changes' AS changes
              {_BASES}
               AND chart_version_below(%(low)s, c.version_key)
               AND (c.version_key = %(high)s OR chart_version_below(c.version_key, %(high)s))
               AND jsonb_typeof(c.artifacthub->'changes') = 'array'
             ORDER BY c.version_key, m.pushed_at DESC) v
         ORDER BY {_SEMVER_ORDER_DESC}
        """,
        {"repository_id": repository_id, "low": low["version_key"], "high": high["version_key"]},
    )
    return cur.fetchall()


def comparison_inputs(cur, repository_id: int, old_id: int, new_id: int) -> dict:
    """What compare.compare needs to compare one version with another (either may be the higher), read in one go,
    so the comparison itself runs with no transaction open: both snapshots, the contents of the files that differ,
    and the changelogs between."""
    found = snapshots(cur, [old_id, new_id])
    old, new = found[old_id], found[new_id]
    cur.execute("SELECT chart_version_below(%s, %s) AS below", (new["version_key"], old["version_key"]))
    low, high = (new, old) if cur.fetchone()["below"] else (old, new)
    differ = {d for path, file in (old["files"] or {}).items() if (new["files"] or {}).get(path, file) != file
              for d in (file["digest"], new["files"][path]["digest"])}
    stored = source_loader(cur)(differ) if differ else {}
    return {"old": old, "new": new, "load": lambda digests: {d: stored[d] for d in digests if d in stored},
            "changelog": changelog(cur, repository_id, low, high)}


def _base(cur, repository_id: int, manifest_id: int, version_key: str) -> int | None:
    cur.execute(
        f"""
        SELECT m.id {_BASES} AND m.id <> %(id)s AND chart_version_below(c.version_key, %(key)s)
         ORDER BY c.prerelease, c.version_key COLLATE "C" DESC, m.pushed_at DESC
         LIMIT 1
        """,
        {"repository_id": repository_id, "id": manifest_id, "key": version_key},
    )
    row = cur.fetchone()
    return row and row["id"]


def _write(cur, manifest_id: int, base: int | None) -> dict | None:
    """A version's report against its base, stored; None (stored too) when it has no base."""
    summary = None
    if base is not None:
        found = snapshots(cur, [base, manifest_id])
        summary = compare.compare(found[base], found[manifest_id], source_loader(cur), texts=False)["report"]
    cur.execute("UPDATE helm_charts SET upgrade_report = %s, upgrade_base_id = %s, upgrade_reported = true"
                " WHERE manifest_id = %s", (Json(summary) if summary else None, base, manifest_id))
    return summary


def write_missing_reports(cur, limit: int) -> int:
    """The reports of up to ``limit`` versions indexed before reports were written (others skip those it holds);
    how many. Each against its base as the catalog holds it now; the versions above are left as they are."""
    cur.execute(
        """
        SELECT c.manifest_id, c.version_key, m.repository_id, m.error
          FROM helm_charts c JOIN manifests m ON m.id = c.manifest_id
         WHERE NOT c.upgrade_reported AND c.version_key IS NOT NULL
         ORDER BY c.manifest_id LIMIT %s FOR UPDATE OF c SKIP LOCKED
        """,
        (limit,),
    )
    rows = cur.fetchall()
    for row in rows:
        base = None if row["error"] else _base(cur, row["repository_id"], row["manifest_id"], row["version_key"])
        _write(cur, row["manifest_id"], base)
    return len(rows)


def write_reports(cur, repository_id: int, manifest_id: int, version_key: str | None) -> dict | None:
    """The report of a version just indexed (``version_key`` None: not SemVer, or indexed with an error, so it has
    none), and of the versions above whose base it now is; its own returned."""
    if version_key is None:
        cur.execute("UPDATE helm_charts SET upgrade_reported = true WHERE manifest_id = %s", (manifest_id,))
        return None
    key = version_key
    own = _write(cur, manifest_id, _base(cur, repository_id, manifest_id, key))
    # Above it, whose base it may now be: those without one, those whose base is below it, or a prerelease where it
    # is a release (releases are preferred), and those whose base it is (indexed again).
    cur.execute(
        f"""
        SELECT m.id, c.version_key {_BASES} AND m.id <> %(id)s AND chart_version_below(%(key)s, c.version_key)
           AND (c.upgrade_base_id IS NULL OR c.upgrade_base_id = %(id)s
                OR (SELECT chart_version_below(b.version_key, %(key)s) OR (b.prerelease AND NOT %(prerelease)s)
                      FROM helm_charts b WHERE b.manifest_id = c.upgrade_base_id))
         ORDER BY {_SEMVER_ORDER}
         LIMIT %(limit)s
        """,
        {"repository_id": repository_id, "id": manifest_id, "key": key, "prerelease": "\x01" in key,
         "limit": MAX_REWRITTEN},
    )
    for above in cur.fetchall():
        if _base(cur, repository_id, above["id"], above["version_key"]) == manifest_id:
            _write(cur, above["id"], manifest_id)
    return own
