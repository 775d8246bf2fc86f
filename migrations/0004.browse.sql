-- depends: 0003.contents
-- Browsing and search at a million tags: sort keys, recency, and one weighted search document per repository.

-- Time of the last registry event that changed the repository (push, retag or delete).
ALTER TABLE repositories ADD COLUMN updated_at timestamptz;
UPDATE repositories r SET updated_at = coalesce((SELECT max(m.pushed_at) FROM manifests m WHERE m.repository_id = r.id),
                                                r.created_at);
ALTER TABLE repositories ALTER COLUMN updated_at SET NOT NULL;
CREATE INDEX repositories_updated_idx ON repositories (updated_at DESC, name DESC);
CREATE INDEX repositories_name_pattern_idx ON repositories (name text_pattern_ops);
-- namespace LIKE 'a/b/%' under a non-C collation needs its own pattern index.
CREATE INDEX repositories_namespace_pattern_idx ON repositories (namespace text_pattern_ops);

-- Per-repository figures every list shows, kept by the worker (ocicat.catalog.writes.refresh_repository) after each
-- event, so a page of repositories or search hits never aggregates over a repository's manifests.
ALTER TABLE repositories
    ADD COLUMN manifest_count int NOT NULL DEFAULT 0,
    ADD COLUMN tag_count int NOT NULL DEFAULT 0,
    ADD COLUMN kinds text[] NOT NULL DEFAULT '{}',
    ADD COLUMN size_bytes bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_pushed_at timestamptz;

-- Weighted search document (see ocicat.catalog.writes.refresh_repository): A name, B title and description,
-- C keywords and maintainers, D annotations and namespace.
ALTER TABLE repositories ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;
CREATE INDEX repositories_search_idx ON repositories USING gin (search);

CREATE INDEX tags_pushed_idx ON tags (repository_id, event_at DESC, name DESC) WHERE digest IS NOT NULL;
-- Version tags only: a repository with thousands of signatures (sha256-<hex>.sig) still pages fast.
CREATE INDEX tags_versions_idx ON tags (repository_id, name) WHERE digest IS NOT NULL AND name NOT LIKE 'sha256-%';
CREATE INDEX manifests_repository_kind_idx ON manifests (repository_id, kind);
-- A repository's newest manifest (its search document and its summary in search hits).
CREATE INDEX manifests_latest_idx ON manifests (repository_id, pushed_at DESC, id DESC) WHERE subject_digest IS NULL;

-- SemVer order for chart versions: releases before prereleases, then version_key descending
-- (byte order, see indexer.helm.version_order); versions that are not SemVer sort last.
ALTER TABLE helm_charts ADD COLUMN prerelease boolean, ADD COLUMN version_key text COLLATE "C";
-- 0 release, 1 prerelease, 2 not SemVer: the first key of chart version order.
-- (Its current body is in migrations/functions/, replaced on every migrate; this is the first version.)
CREATE FUNCTION chart_version_rank(prerelease boolean) RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN prerelease IS NULL THEN 2 WHEN prerelease THEN 1 ELSE 0 END $$;

-- A chart repository's latest version (highest in chart version order), kept by the worker.
ALTER TABLE repositories ADD COLUMN latest_chart_id bigint REFERENCES manifests (id) ON DELETE SET NULL;
CREATE INDEX repositories_latest_chart_idx ON repositories (latest_chart_id) WHERE latest_chart_id IS NOT NULL;

-- What a chart's owner should hear about but that did not stop indexing (unlike manifests.error).
ALTER TABLE helm_charts ADD COLUMN warnings jsonb NOT NULL DEFAULT '[]';
CREATE INDEX helm_charts_name_idx ON helm_charts (name);
