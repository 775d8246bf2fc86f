-- depends: 0013.subscriptions
-- The classic Helm chart repository (api.helm_repository).
--
-- Its index.yaml is revalidated by what changed: every refresh of a repository (writes._REFRESH_REPOSITORY, after
-- each event) takes a new number from this sequence, so the numbers of the repositories a caller sees under a
-- namespace tell whether its index is still the same. A sequence, not a time: numbers are unique, so no two
-- changes can look alike, whatever order they commit in.
CREATE SEQUENCE repository_changes;
ALTER TABLE repositories ADD COLUMN change_serial bigint NOT NULL DEFAULT 0;

-- Each chart version's index entry, written when it is indexed (functions/helm_index_entry.sql); for charts indexed
-- before this migration, by the workers in the background when they start (indexer.backfill), and meanwhile
-- whenever an index is written (ocicat.catalog.helm_repository).
ALTER TABLE helm_charts ADD COLUMN index_entry text;
-- What that pass looks for, found without reading the whole table at every start (empty once it is done).
CREATE INDEX helm_charts_without_index_entry_idx ON helm_charts (manifest_id) WHERE index_entry IS NULL;
