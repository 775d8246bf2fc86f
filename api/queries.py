"""Every catalog read, as SQL in one place. Lists are keyset-paginated on unique sort keys."""

from __future__ import annotations

REPOSITORIES = """
SELECT r.name, r.namespace,
       (SELECT count(*) FROM tags t JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
         WHERE t.repository_id = r.id) AS tag_count,
       (SELECT coalesce(array_agg(DISTINCT m.kind ORDER BY m.kind), '{}') FROM manifests m WHERE m.repository_id = r.id) AS kinds,
       (SELECT max(m.pushed_at) FROM manifests m WHERE m.repository_id = r.id) AS last_pushed_at
  FROM repositories r
 WHERE EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
   AND (%(namespace)s::text IS NULL OR r.namespace = %(namespace)s OR r.namespace LIKE %(namespace_prefix)s)
   AND (%(after)s::text IS NULL OR r.name > %(after)s)
 ORDER BY r.name
 LIMIT %(limit)s
"""


def list_repositories(cur, namespace: str | None, after: str | None, limit: int) -> list[dict]:
    prefix = None if namespace is None else _like_escape(namespace.strip("/")) + "/%"
    cur.execute(
        REPOSITORIES,
        {"namespace": None if namespace is None else namespace.strip("/"), "namespace_prefix": prefix, "after": after, "limit": limit},
    )
    return cur.fetchall()


def repository_id(cur, name: str) -> int | None:
    cur.execute(
        "SELECT r.id FROM repositories r WHERE r.name = %s AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)",
        (name,),
    )
    row = cur.fetchone()
    return row["id"] if row else None


def list_tags(cur, repository_id: int, after: str | None, limit: int) -> list[dict]:
    cur.execute(
        """
        SELECT t.name, m.digest, m.kind, m.media_type, m.artifact_type, m.config_media_type, m.size_bytes,
               t.event_at AS pushed_at, m.error,
               CASE WHEN c.manifest_id IS NULL THEN NULL ELSE
                    jsonb_build_object('name', c.name, 'version', c.version, 'app_version', c.app_version,
                                       'description', c.description) END AS chart
          FROM tags t
          JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
          LEFT JOIN helm_charts c ON c.manifest_id = m.id
         WHERE t.repository_id = %s AND (%s::text IS NULL OR t.name > %s)
         ORDER BY t.name
         LIMIT %s
        """,
        (repository_id, after, after, limit),
    )
    return cur.fetchall()


def chart_version(cur, repository: str, version: str) -> dict | None:
    """The chart with this version; if several manifests carry it, the tagged and most recently pushed one."""
    cur.execute(
        """
        SELECT r.name AS repository, m.digest, m.pushed_at, c.*
          FROM repositories r
          JOIN manifests m ON m.repository_id = r.id
          JOIN helm_charts c ON c.manifest_id = m.id
         WHERE r.name = %s AND c.version = %s
         ORDER BY EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id AND t.digest = m.digest) DESC,
                  m.pushed_at DESC
         LIMIT 1
        """,
        (repository, version),
    )
    return cur.fetchone()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
