-- Whether a caller's roles cover a repository: the path itself (names) or anything below (prefixes); names
-- NULL means "the same as prefixes" (a role covers the path and what is below it), so the API sends the
-- list once (ocicat.catalog.visibility.Visibility).
--
-- Each ancestor is looked up on its own: "= ANY" of a constant array is a hash lookup, where
-- "ancestors && prefixes" compares every pair (50 us a row for 1,000 grants, bench/api.py); only
-- repositories nested deeper than four levels take that path for their deeper ancestors. The root's check
-- needs no repository (every ancestors[1] is ''), so the planner folds it to a constant. The planner
-- inlines the function, and coalesce() keeps it from estimating the selectivity of every element of the
-- arrays, which cost more than the query itself for a user with 1,000 grants.
CREATE OR REPLACE FUNCTION path_covered(name text, ancestors text[], names text[], prefixes text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(name = ANY (coalesce(names, prefixes)) OR '' = ANY (prefixes)
                    OR ancestors[2] = ANY (prefixes) OR ancestors[3] = ANY (prefixes) OR ancestors[4] = ANY (prefixes)
                    OR (cardinality(ancestors) > 4 AND ancestors[5:] && prefixes), false)
$$;
