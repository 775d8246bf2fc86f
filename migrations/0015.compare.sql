-- depends: 0014.helm_repository
-- What comparing two chart versions needs (ocicat.compare), kept at ingest.
--
-- Template and CRD contents, stored once per distinct content: a chart's versions mostly repeat their templates, so
-- each version lists its files (path, size) by the SHA-256 of what is kept of them, and the text is stored once under
-- that digest, whichever versions, repositories or charts share it. Contents are never updated, only added; those no
-- version lists any more (their versions deleted) are removed by the workers when they start (indexer.backfill).
CREATE TABLE chart_sources (
    digest    bytea PRIMARY KEY,  -- SHA-256 of content, UTF-8
    content   text NOT NULL,
    document  jsonb  -- a CRD's first YAML document, parsed when stored (ocicat.compare.crd_document)
);

CREATE TABLE chart_files (
    manifest_id  bigint NOT NULL REFERENCES helm_charts (manifest_id) ON DELETE CASCADE,
    path         text NOT NULL,  -- templates/... or crds/..., relative to the chart root
    size         bigint NOT NULL,  -- in the archive
    truncated    boolean NOT NULL,  -- content is cut at the caps (indexer.chart_archive.MAX_SOURCE)
    digest       bytea NOT NULL REFERENCES chart_sources (digest),
    PRIMARY KEY (manifest_id, path)
);
-- Which versions list a content: the clean-up's question, and the foreign key's check when a content is removed.
CREATE INDEX chart_files_digest_idx ON chart_files (digest);

-- values.yaml read once, when the version is indexed (ocicat.compare.parsed_values): the document and the comments
-- that explain its keys, or why it cannot be read. NULL for versions indexed before this migration (read when compared).
ALTER TABLE helm_charts ADD COLUMN values_parsed jsonb;

-- The upgrade report against the version before (ocicat.compare.report), written when a version is indexed and
-- rewritten when a version pushed later falls in between. NULL: the first version, or not SemVer.
ALTER TABLE helm_charts ADD COLUMN upgrade_report jsonb;
-- The version it compares with (nobody's once that version is deleted: the report stays, as of when it was written).
ALTER TABLE helm_charts ADD COLUMN upgrade_base_id bigint REFERENCES manifests (id) ON DELETE SET NULL;
CREATE INDEX helm_charts_upgrade_base_idx ON helm_charts (upgrade_base_id) WHERE upgrade_base_id IS NOT NULL;
-- Whether the report was written (NULL is also the report of a first version): versions indexed before this migration
-- get theirs from the workers in the background at start (indexer.backfill), found by this index.
ALTER TABLE helm_charts ADD COLUMN upgrade_reported boolean NOT NULL DEFAULT false;
CREATE INDEX helm_charts_without_upgrade_report_idx ON helm_charts (manifest_id)
    WHERE NOT upgrade_reported AND version_key IS NOT NULL;
