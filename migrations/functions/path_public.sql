-- A repository's visibility under the current rules: the longest rule covering it decides (NULL: no rule,
-- OCICAT_DEFAULT_VISIBILITY). Kept on repositories.public (ocicat.catalog.visibility).
CREATE OR REPLACE FUNCTION path_public(name text) RETURNS boolean LANGUAGE sql STABLE STRICT AS $$
    SELECT v.public FROM visibility_rules v
     WHERE v.path = name OR v.path = ANY (path_ancestors(name))
     ORDER BY length(v.path) DESC LIMIT 1
$$;
