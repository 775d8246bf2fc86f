-- depends: 0008.resync
-- The permission filter for callers who see only what is public, and for users with many roles.

-- Repositories anyone may see while OCICAT_DEFAULT_VISIBILITY is private. A caller without roles
-- (anonymous, or a user granted nothing) is filtered by coalesce(public, false) alone (ocicat.catalog.visibility.VISIBLE
-- folds the rest away), which these partial indexes match: a page costs its own rows, instead of a
-- walk over every hidden repository (47 ms a page in a private catalog of 60,000, bench/api.py).
CREATE INDEX repositories_public_name_idx ON repositories (name)
    WHERE manifest_count > 0 AND coalesce(public, false);
CREATE INDEX repositories_public_updated_idx ON repositories (updated_at DESC, name DESC)
    WHERE manifest_count > 0 AND coalesce(public, false);
CREATE INDEX repositories_public_tree_idx ON repositories ((replace(namespace, '/', ' ') COLLATE "C"))
    WHERE manifest_count > 0 AND coalesce(public, false);

-- As in 0005, with two savings for a user with many roles: names NULL means "the same as prefixes"
-- (a role covers the path and what is below it), so the API sends the list once; and the root's
-- check needs no repository (every ancestors[1] is ''), so the planner folds it to a constant
-- instead of hashing the list once more per query.
-- (Its current body is in migrations/functions/path_covered.sql, replaced on every migrate.)
CREATE OR REPLACE FUNCTION path_covered(name text, ancestors text[], names text[], prefixes text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(name = ANY (coalesce(names, prefixes)) OR '' = ANY (prefixes)
                    OR ancestors[2] = ANY (prefixes) OR ancestors[3] = ANY (prefixes) OR ancestors[4] = ANY (prefixes)
                    OR (cardinality(ancestors) > 4 AND ancestors[5:] && prefixes), false)
$$;
