-- The strict ancestors of a repository path, root first: 'a/b/c' -> {'', 'a', 'a/b'}.
-- repositories.ancestors is generated from it; api.auth._ancestors is the same in Python.
CREATE OR REPLACE FUNCTION path_ancestors(name text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(array_to_string(parts[1:n], '/') ORDER BY n)
      FROM (SELECT string_to_array(name, '/') AS parts) p, generate_series(0, cardinality(parts) - 1) n
$$;
