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


# Per manifest: what is attached to it (signatures, SBOMs, attestations name it as their subject).
_ATTACHED = """
LEFT JOIN LATERAL (
    SELECT coalesce(bool_or(a.kind = 'signature'), false) AS signed,
           coalesce(bool_or(a.kind = 'sbom'), false) AS has_sbom,
           count(*) FILTER (WHERE a.kind = 'attestation') AS attestations
      FROM manifests a WHERE a.repository_id = m.repository_id AND a.subject_digest = m.digest
) att ON true
"""

# Per index: its platforms, leaving out BuildKit attestation entries (unknown/unknown).
_PLATFORMS = """
(SELECT coalesce(jsonb_agg(DISTINCT concat_ws('/', ch.platform->>'os', ch.platform->>'architecture',
                                              ch.platform->>'variant')), '[]')
   FROM index_children ch
  WHERE ch.manifest_id = m.id AND coalesce(ch.platform->>'os', 'unknown') <> 'unknown'
    AND coalesce(ch.annotations->>'vnd.docker.reference.type', '') <> 'attestation-manifest') AS platforms
"""


def list_tags(cur, repository_id: int, after: str | None, limit: int) -> list[dict]:
    """Version tags; tags of attachments (signatures, SBOMs, referrers indexes) are shown on their subject."""
    cur.execute(
        f"""
        SELECT t.name, m.digest, m.kind, m.media_type, m.artifact_type, m.config_media_type, m.size_bytes,
               t.event_at AS pushed_at, m.error, att.signed, att.has_sbom, att.attestations, {_PLATFORMS},
               CASE WHEN c.manifest_id IS NULL THEN NULL ELSE
                    jsonb_build_object('name', c.name, 'version', c.version, 'app_version', c.app_version,
                                       'description', c.description) END AS chart
          FROM tags t
          JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
          LEFT JOIN helm_charts c ON c.manifest_id = m.id
          {_ATTACHED}
         WHERE t.repository_id = %s AND m.subject_digest IS NULL AND (%s::text IS NULL OR t.name > %s)
         ORDER BY t.name
         LIMIT %s
        """,
        (repository_id, after, after, limit),
    )
    return cur.fetchall()


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
               (SELECT jsonb_build_object('name', c.name, 'version', c.version, 'app_version', c.app_version,
                                          'description', c.description)
                  FROM helm_charts c WHERE c.manifest_id = m.id) AS chart
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


def chart_version(cur, repository: str, version: str) -> dict | None:
    """The chart with this version; if several manifests carry it, the tagged and most recently pushed one."""
    cur.execute(
        """
        SELECT r.name AS repository, m.digest, m.pushed_at, m.error, c.*
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
