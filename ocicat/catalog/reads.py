"""Every catalog read but search (ocicat.catalog.search), as SQL in one place. Lists are keyset-paginated on
unique sort keys.

Every read that can reach a repository takes the caller's :class:`Visibility`
and filters by it in SQL, so what a caller may not see is absent alike from
lists, details, search hits, facets and counts.
"""

from __future__ import annotations

import bisect

from .visibility import VISIBLE, Visibility, array_literal

# A repository is listed once it holds a manifest; its figures are kept by the worker
# (writes.refresh_repositories), attachments counted on their subjects.
_REPOSITORY_COLUMNS = "r.name, r.namespace, r.created_at, r.updated_at, r.tag_count, r.kinds, r.size_bytes, r.last_pushed_at"

# A namespace as a key of the namespace tree indexes (migrations 0007, 0009): "/" spelled " ", which sorts (in
# byte order) below every character a name may hold, so a namespace and everything below it are the one range
# [namespace, namespace + "!"), which those indexes (the public repositories' too) answer.
_TREE_KEY = "replace(r.namespace, '/', ' ') COLLATE \"C\""

# Names in byte order, the order of the name indexes (migration 0022), in which everything below a namespace is one
# range of names: [namespace + "/", namespace + "0"), "0" following "/".
_BY_NAME = 'r.name COLLATE "C"'

# A namespace and everything below it (NULL: the whole catalog); params: subtree(). An organization (a top-level
# namespace) is its own key of the organization indexes (migration 0021), which hold its repositories in the lists'
# orders, so its page is read in order and the rest of it never; a deeper namespace is its range of names. The
# parameters are constants, so the planner folds the filter to the one condition that applies.
IN_SUBTREE = f"""(%(namespace)s::text IS NULL
 OR (%(organization)s::text IS NOT NULL AND split_part(r.namespace, '/', 1) = %(organization)s)
 OR (%(organization)s::text IS NULL AND {_BY_NAME} >= %(names_start)s AND {_BY_NAME} < %(names_stop)s))"""

# Of a kind (NULL: any); params: kind.
IN_KIND = "(%(kind)s::text IS NULL OR %(kind)s = ANY (r.kinds))"

# A listed repository inside the list's filters, whoever looks; and the same seen by the caller.
_LISTED = f"""
r.manifest_count > 0
AND {IN_SUBTREE}
AND {IN_KIND}
AND (%(tsquery)s::text IS NULL OR r.search @@ %(tsquery)s::tsquery)
"""
_REPOSITORY_FILTERS = f"{_LISTED} AND {VISIBLE}"


def query_words(cur, q: str) -> tuple[list[str], str]:
    """Free text's words (its 'simple' lexemes) and the tsquery matching every one as a prefix (Artifact Hub's
    approach).

    Built in a statement of its own so the queries that use it get it as a
    constant, which the planner can estimate. Text without words gives the
    empty query, which matches nothing.
    """
    cur.execute(
        "SELECT coalesce(array_agg(lexeme), '{}') AS words,"
        " coalesce(string_agg(quote_literal(lexeme) || ':*', ' & '), '') AS query"
        " FROM unnest(tsvector_to_array(to_tsvector('simple', %s))) lexeme",
        (q,),
    )
    row = cur.fetchone()
    return row["words"], row["query"]


def prefix_query(cur, q: str | None) -> str | None:
    """:func:`query_words`' tsquery (None without text), for the lists' text filter."""
    return None if q is None else query_words(cur, q)[1]


# sort -> (ORDER BY, keyset condition on the cursor's values, cursor key of a row, the key's SQL types)
REPOSITORY_SORTS = {
    "name": (_BY_NAME, f"{_BY_NAME} > %(c0)s", lambda row: [row["name"]], ("text",)),
    "-updated": ("r.updated_at DESC, r.name DESC", "(r.updated_at, r.name) < (%(c0)s, %(c1)s)",
                 lambda row: [row["updated_at"], row["name"]], ("timestamptz", "text")),
}


def subtree(namespace: str | None) -> dict:
    """The parameters of :data:`IN_SUBTREE` (and of search's namespace filter) for ``namespace``."""
    namespace = (namespace or "").strip("/") or None  # "" as within(): the whole catalog
    organization = namespace if namespace and "/" not in namespace else None
    return {"namespace": namespace, "organization": organization,
            "names_start": namespace and namespace + "/", "names_stop": namespace and namespace + "0"}


def _filters(namespace: str | None, kind: str | None = None, tsquery: str | None = None) -> dict:
    return {**subtree(namespace), "kind": kind, "tsquery": tsquery}


# The first roles' ranges a page by name reads (Visibility.name_ranges), four times more while they hold too few rows.
_FIRST_RANGES = 32


def _page_by_name(cur, ranges: tuple, select: str, listed: str, keyset: str, after: str | None, params: dict,
                  name_column: str = "name") -> list[dict]:
    """A page by name (``select`` from repositories r, of those where ``listed`` holds, after ``keyset`` and the
    cursor's name ``after``) for a caller who sees some private repositories by their roles: the first of the
    public repositories' page (their own index) and of the rows of the caller's first roles' ranges of names
    (``ranges``, Visibility.name_ranges) after the cursor, each range up to a page.

    Ranges past those read hold only names above them, so the page is
    complete when its last name lies below the next range's start; else it
    is read again from four times the ranges. A reporter on 1,000 of 100,000
    namespaces reads about the rows of their page this way, where the name
    index filtered row by row holds 5,000 before it (bench/api.py), and what
    is hidden from them is never read. The ranges go a few dozen at a time:
    2,000 of them cost more to send and parse than the reads they direct.
    Each range is read in name order, then filtered (the OFFSET 0 subquery):
    left to itself, the planner joined a filter's own index to every range
    (the chart list's latest_chart_id, a bitmap of every chart, 0.14 ms a
    range).
    """
    first = bisect.bisect_right(ranges, after, key=lambda r: r[1]) if after else 0
    count = _FIRST_RANGES
    while True:
        chunk = ranges[first:first + count]
        cur.execute(f"""
            {select} WHERE r.id = ANY (ARRAY(
                SELECT g.id FROM unnest(%(starts)s::text[], %(stops)s::text[]) b(start, stop)
                 CROSS JOIN LATERAL (SELECT r.id FROM (SELECT * FROM repositories r
                                                        WHERE {_BY_NAME} >= b.start AND {_BY_NAME} < b.stop
                                                          AND r.manifest_count > 0 AND ({keyset})
                                                        ORDER BY {_BY_NAME} OFFSET 0) r
                                      WHERE NOT coalesce(r.public, %(default_public)s) AND {listed}
                                      ORDER BY {_BY_NAME} LIMIT %(limit)s) g
                UNION ALL
                (SELECT r.id FROM repositories r
                  WHERE coalesce(r.public, %(default_public)s) AND {listed} AND ({keyset})
                  ORDER BY {_BY_NAME} LIMIT %(limit)s)))
             ORDER BY {_BY_NAME} LIMIT %(limit)s""",
                    {**params, "starts": array_literal(start for start, _ in chunk),
                     "stops": array_literal(stop for _, stop in chunk)})
        rows = cur.fetchall()
        following = ranges[first + count:first + count + 1]
        if not following or (len(rows) == params["limit"] and rows[-1][name_column] < following[0][0]):
            return rows
        count *= 4


def list_repositories(cur, seen: Visibility, *, namespace, kind, q, sort: str, after: list | None, limit: int) -> list[dict]:
    order, keyset, _, _ = REPOSITORY_SORTS[sort]
    seen = seen.within(namespace)
    cursor = {f"c{i}": v for i, v in enumerate(after or [])}
    params = {**seen.params, **_filters(namespace, kind, prefix_query(cur, q)), **cursor, "limit": limit}
    keyset = "true" if after is None else keyset
    # Not with a text filter: the ranges would all be read for a rare word, which the text index finds at once.
    if sort == "name" and q is None and seen.name_ranges:
        return _page_by_name(cur, seen.name_ranges, f"SELECT {_REPOSITORY_COLUMNS} FROM repositories r", _LISTED,
                             keyset, after and after[0], params)
    # A deeper namespace by update: its rows, then their page (OFFSET 0 keeps the subquery whole). Left to itself,
    # the planner walked the whole catalog's update order to find the page of a subtree of 6 repositories it
    # estimated at 3,000 (1.7 s at 10 million tags, bench/api.py's mixed load); a subtree's range of names holds
    # at most an organization, whose own order (migration 0021) needs no subquery.
    fence = " OFFSET 0" if sort == "-updated" and params["namespace"] and not params["organization"] else ""
    cur.execute(f"SELECT {_REPOSITORY_COLUMNS} FROM (SELECT r.* FROM repositories r WHERE {_REPOSITORY_FILTERS}"
                f" AND ({keyset}){fence}) r ORDER BY {order} LIMIT %(limit)s", params)
    return cur.fetchall()


def list_namespaces(cur, seen: Visibility, *, namespace: str | None, after: str | None, limit: int) -> list[dict]:
    """The namespaces directly below ``namespace`` (the top level if None), by name, each holding repositories
    the caller may see (a namespace of only hidden repositories is not listed).

    A skip scan: each step of the recursion finds the first key past the
    previous child's subtree ("<child>!" in byte order, "!" being the first
    character after " "), so a page costs ``limit`` index probes however many
    repositories lie below.
    """
    parent = (namespace or "").strip("/")
    prefix = parent.replace("/", " ") + " " if parent else ""
    # Every key below the parent lies in [prefix + "!", stop); "!" also leaves out the top level's "".
    stop = parent.replace("/", " ") + "!" if parent else "\x7f"
    cur.execute(
        f"""
        WITH RECURSIVE walk(key) AS (
            (SELECT {_TREE_KEY} FROM repositories r
              WHERE r.manifest_count > 0 AND {_TREE_KEY} >= %(start)s AND {_TREE_KEY} < %(stop)s AND {VISIBLE}
              ORDER BY 1 LIMIT 1)
            UNION ALL
            SELECT (SELECT {_TREE_KEY} FROM repositories r
                     WHERE r.manifest_count > 0 AND {_TREE_KEY} < %(stop)s AND {VISIBLE}
                       AND {_TREE_KEY} >= %(prefix)s || split_part(substr(w.key, %(skip)s), ' ', 1) || '!'
                     ORDER BY 1 LIMIT 1)
              FROM walk w WHERE w.key IS NOT NULL
        )
        SELECT split_part(substr(key, %(skip)s), ' ', 1) AS child FROM walk WHERE key IS NOT NULL LIMIT %(limit)s
        """,
        {**seen.within(parent).params, "prefix": prefix, "start": prefix + (after.rsplit("/", 1)[-1] if after else "") + "!", "stop": stop,
         "skip": len(prefix) + 1, "limit": limit},
    )
    return [{"name": f"{parent}/{row['child']}" if parent else row["child"], "namespace": parent}
            for row in cur.fetchall()]


def repository(cur, seen: Visibility, name: str) -> dict | None:
    """The repository, if it holds a manifest and the caller may see it."""
    cur.execute(
        f"SELECT r.id, {_REPOSITORY_COLUMNS} FROM repositories r"
        f" WHERE r.name = %(name)s AND r.manifest_count > 0 AND {VISIBLE}",
        {**seen.params, "name": name},
    )
    return cur.fetchone()


def repository_id(cur, seen: Visibility, name: str) -> int | None:
    row = repository(cur, seen, name)
    return row["id"] if row else None


# Per manifest: what is attached to it (signatures, SBOMs, attestations name it as their subject).
_ATTACHED = """
LEFT JOIN LATERAL (
    SELECT coalesce(bool_or(a.kind = 'signature'), false) AS signed,
           coalesce(bool_or(a.kind = 'sbom'), false) AS has_sbom,
           count(*) FILTER (WHERE a.kind = 'attestation') AS attestations
      FROM manifests a WHERE a.repository_id = m.repository_id AND a.subject_digest = m.digest
) att ON true
"""

# Per manifest: the platforms it runs on. An index's children, leaving out BuildKit attestation
# entries (unknown/unknown); a single image's own, from its config.
_PLATFORMS = """
(SELECT coalesce(jsonb_agg(DISTINCT p.platform), '[]')
   FROM (SELECT concat_ws('/', ch.platform->>'os', ch.platform->>'architecture', ch.platform->>'variant') AS platform
           FROM index_children ch
          WHERE ch.manifest_id = m.id AND coalesce(ch.platform->>'os', 'unknown') <> 'unknown'
            AND coalesce(ch.annotations->>'vnd.docker.reference.type', '') <> 'attestation-manifest'
         UNION ALL
         SELECT concat_ws('/', ic.os, ic.architecture, ic.variant)
           FROM image_configs ic WHERE ic.manifest_id = m.id AND ic.os IS NOT NULL AND ic.os <> 'unknown') p
) AS platforms
"""


TAG_SORTS = {
    "name": ("t.name", "t.name > %(c0)s", lambda row: [row["name"]], ("text",)),
    "-pushed": ("t.event_at DESC, t.name DESC", "(t.event_at, t.name) < (%(c0)s, %(c1)s)",
                lambda row: [row["pushed_at"], row["name"]], ("timestamptz", "text")),
}


def list_tags(cur, repository_id: int, *, name: str | None, kind: str | None, sort: str, after: list | None,
              limit: int) -> list[dict]:
    """Version tags; tags of attachments (signatures, SBOMs, referrers indexes) are shown on their subject."""
    order, keyset, _, _ = TAG_SORTS[sort]
    cursor = {f"c{i}": v for i, v in enumerate(after or [])}
    cur.execute(
        f"""
        SELECT t.name, m.digest, m.kind, m.media_type, m.artifact_type, m.config_media_type, m.size_bytes,
               t.event_at AS pushed_at, m.error, att.signed, att.has_sbom, att.attestations, {_PLATFORMS},
               CASE WHEN c.manifest_id IS NULL THEN NULL ELSE
                    jsonb_build_object('name', c.name, 'version', c.version, 'app_version', c.app_version,
                                       'description', c.description) END AS chart
          FROM tags t
          -- LATERAL on the unique (repository, digest): the planner walks the tag index in order and
          -- stops at the page's end, instead of joining every tag of a large repository first.
          CROSS JOIN LATERAL (SELECT * FROM manifests v WHERE v.repository_id = t.repository_id AND v.digest = t.digest
                               LIMIT 1) m
          LEFT JOIN helm_charts c ON c.manifest_id = m.id
          {_ATTACHED}
         WHERE t.repository_id = %(repository_id)s AND m.subject_digest IS NULL
           AND t.digest IS NOT NULL AND t.name NOT LIKE 'sha256-%%'
           AND (%(prefix)s::text IS NULL OR t.name LIKE %(prefix)s)
           AND (%(kind)s::text IS NULL OR m.kind = %(kind)s)
           AND ({'true' if after is None else keyset})
         ORDER BY {order}
         LIMIT %(limit)s
        """,
        {"repository_id": repository_id, "prefix": None if name is None else _like_escape(name) + "%",
         "kind": kind, **cursor, "limit": limit},
    )
    return cur.fetchall()


# A chart version in brief, as tags, manifests and catalog events show it (NULL for a manifest that is no chart).
CHART_BRIEF = """(SELECT jsonb_build_object('name', c.name, 'version', c.version, 'app_version', c.app_version,
                                              'description', c.description)
                     FROM helm_charts c WHERE c.manifest_id = {manifest_id})"""


def has_manifest(cur, repository_id: int, digest: str) -> bool:
    cur.execute("SELECT 1 FROM manifests WHERE repository_id = %s AND digest = %s", (repository_id, digest))
    return cur.fetchone() is not None


def has_tag(cur, repository_id: int, tag: str) -> bool:
    cur.execute("SELECT 1 FROM tags WHERE repository_id = %s AND name = %s AND digest IS NOT NULL", (repository_id, tag))
    return cur.fetchone() is not None


def manifest(cur, repository_id: int, digest: str) -> dict | None:
    """One manifest with everything known about it: descriptors, config summary, tags, attachments."""
    cur.execute(
        f"""
        SELECT m.id, m.digest, m.kind, m.media_type, m.artifact_type, m.config_media_type, m.config_digest,
               m.manifest_size, m.size_bytes, m.annotations, m.metadata, m.subject_digest, m.error, m.pushed_at,
               att.signed, att.has_sbom, att.attestations, {_PLATFORMS},
               (SELECT coalesce(array_agg(t.name ORDER BY t.name), '{{}}') FROM tags t
                 WHERE t.repository_id = m.repository_id AND t.digest = m.digest) AS tags,
               (SELECT to_jsonb(ic) - 'manifest_id' FROM image_configs ic WHERE ic.manifest_id = m.id) AS image_config,
               {CHART_BRIEF.format(manifest_id="m.id")} AS chart
          FROM manifests m
          {_ATTACHED}
         WHERE m.repository_id = %s AND m.digest = %s
        """,
        (repository_id, digest),
    )
    row = cur.fetchone()
    if row is None:
        return None
    cur.execute(
        "SELECT media_type, digest, size_bytes, annotations FROM layers WHERE manifest_id = %s ORDER BY position",
        (row["id"],),
    )
    row["layers"] = cur.fetchall()
    cur.execute(
        "SELECT media_type, digest, size_bytes, platform, annotations FROM index_children"
        " WHERE manifest_id = %s ORDER BY position",
        (row["id"],),
    )
    row["children"] = cur.fetchall()
    cur.execute(
        "SELECT digest, kind, media_type, artifact_type, annotations, pushed_at FROM manifests"
        " WHERE repository_id = %s AND subject_digest = %s ORDER BY pushed_at, digest",
        (repository_id, digest),
    )
    row["attachments"] = cur.fetchall()
    return row


# The chart with a version (or at a digest); if several manifests carry the version, the tagged and most recently
# pushed one.
_CHART_AT = f"""
  FROM repositories r
  JOIN manifests m ON m.repository_id = r.id
  JOIN helm_charts c ON c.manifest_id = m.id
 WHERE r.name = %(name)s AND {VISIBLE}
   AND (%(version)s::text IS NULL OR c.version = %(version)s) AND (%(digest)s::text IS NULL OR m.digest = %(digest)s)
 ORDER BY EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id AND t.digest = m.digest) DESC, m.pushed_at DESC
 LIMIT 1
"""


# What a chart version's detail shows: helm_charts but for what only the worker and comparisons read (values_parsed,
# index_entry, the upgrade base), which can be larger than all the rest.
_CHART_DETAIL = """
c.manifest_id, c.api_version, c.name, c.version, c.kube_version, c.description, c.type, c.keywords, c.home, c.sources,
c.dependencies, c.maintainers, c.icon, c.app_version, c.deprecated, c.annotations, c.condition, c.tags, c.readme,
c.readme_html, c.values_yaml, c.values_schema, c.templates, c.crds, c.chart_lock, c.has_provenance, c.artifacthub,
c.warnings, c.prerelease, c.version_key, c.upgrade_report
"""


def chart_version(cur, seen: Visibility, repository: str, version: str | None = None,
                  digest: str | None = None) -> dict | None:
    """The chart with this version (or at this digest), everything known of it."""
    cur.execute(f"SELECT r.name AS repository, r.namespace, m.digest, m.pushed_at, m.error, {_CHART_DETAIL}"
                f" {_CHART_AT}", {**seen.params, "name": repository, "version": version, "digest": digest})
    return cur.fetchone()


def chart_version_id(cur, seen: Visibility, repository: str, version: str) -> tuple[int, int] | None:
    """(repository id, manifest id) of the chart with this version, as :func:`chart_version` finds it."""
    cur.execute(f"SELECT r.id AS repository_id, m.id AS manifest_id {_CHART_AT}",
                {**seen.params, "name": repository, "version": version, "digest": None})
    row = cur.fetchone()
    return row and (row["repository_id"], row["manifest_id"])


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Chart versions in SemVer order: releases, then prereleases, then versions that are not SemVer
# (chart_version_rank); the worker keeps each repository's first in this order
# as its latest_chart_id (writes._REFRESH_REPOSITORIES).
_VERSION_RANK = "chart_version_rank(c.prerelease)"
_CHART_SUMMARY = """
c.name, c.version, c.app_version, c.description, c.icon, c.keywords, c.deprecated, c.type, m.digest, m.pushed_at,
c.upgrade_report - 'items' - 'notes' AS upgrade
"""


def list_charts(cur, seen: Visibility, *, namespace, q, after: str | None, limit: int) -> list[dict]:
    """The latest version of every chart repository, by repository name."""
    seen = seen.within(namespace)
    params = {**seen.params, **_filters(namespace, None, prefix_query(cur, q)), "after": after, "limit": limit}
    select = f"""
        SELECT r.name AS repository, r.namespace, {_CHART_SUMMARY}
          FROM repositories r
          JOIN manifests m ON m.id = r.latest_chart_id
          JOIN helm_charts c ON c.manifest_id = m.id"""
    listed = f"{_LISTED} AND r.latest_chart_id IS NOT NULL"
    keyset = f"%(after)s::text IS NULL OR {_BY_NAME} > %(after)s"
    if q is None and seen.name_ranges:  # as list_repositories
        return _page_by_name(cur, seen.name_ranges, select, listed, keyset, after, params, name_column="repository")
    cur.execute(f"{select} WHERE {listed} AND {VISIBLE} AND ({keyset}) ORDER BY {_BY_NAME} LIMIT %(limit)s", params)
    return cur.fetchall()


def latest_charts(cur, repository_ids: list[int]) -> list[dict]:
    """The latest chart version of each repository (found by a read that filtered by visibility), in the order
    given."""
    cur.execute(
        f"""
        SELECT r.name AS repository, r.namespace, {_CHART_SUMMARY}
          FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS given(id, position)
          JOIN repositories r ON r.id = given.id
          JOIN manifests m ON m.id = r.latest_chart_id
          JOIN helm_charts c ON c.manifest_id = m.id
         ORDER BY given.position
        """,
        {"ids": repository_ids},
    )
    return cur.fetchall()


# Keys of the other lists: a row's cursor key, and its SQL types (as the statements cast the cursor's values).
NAME_KEY = ("text",)
CHART_VERSION_KEY = (lambda row: [row["rank"], row["version_key"], row["id"]], ("int4", "text", "int8"))


def list_chart_versions(cur, repository_id: int, after: list | None, limit: int) -> list[dict]:
    cursor = dict(zip(("rank", "key", "id"), after or [None, None, None]))
    cur.execute(
        f"""
        SELECT {_CHART_SUMMARY}, {_VERSION_RANK} AS rank, coalesce(c.version_key, '') AS version_key, m.id
          FROM manifests m JOIN helm_charts c ON c.manifest_id = m.id
         WHERE m.repository_id = %(repository_id)s AND m.subject_digest IS NULL
           AND (%(rank)s::int IS NULL
                OR {_VERSION_RANK} > %(rank)s::int
                OR ({_VERSION_RANK} = %(rank)s::int AND (coalesce(c.version_key, '') < %(key)s COLLATE "C"
                    OR (coalesce(c.version_key, '') = %(key)s COLLATE "C" AND m.id < %(id)s::bigint))))
         ORDER BY {_VERSION_RANK}, coalesce(c.version_key, '') COLLATE "C" DESC, m.id DESC
         LIMIT %(limit)s
        """,
        {"repository_id": repository_id, **cursor, "limit": limit},
    )
    return cur.fetchall()
