-- depends: 0013.subscriptions
-- The classic Helm chart repository (api.helm_repository) revalidates its index.yaml by what changed: every
-- refresh of a repository (writes._REFRESH_REPOSITORY, after each event) takes a new number from this sequence,
-- so the numbers of the repositories a caller sees under a namespace tell whether its index is still the same.
-- A sequence, not a time: numbers are unique, so no two changes can look alike, whatever order they commit in.
CREATE SEQUENCE repository_changes;
ALTER TABLE repositories ADD COLUMN change_serial bigint NOT NULL DEFAULT 0;
