-- depends: 0004.browse
-- Who may see what: users, API tokens, roles on path prefixes, visibility per path prefix.
-- Paths are repository path prefixes that cover themselves and everything below them;
-- '' is the root and covers the whole registry.

-- The strict ancestors of a repository path, root first: 'a/b/c' -> {'', 'a', 'a/b'}.
-- (Its current body is in migrations/functions/, replaced on every migrate; this is the first version.)
CREATE FUNCTION path_ancestors(name text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(array_to_string(parts[1:n], '/') ORDER BY n)
      FROM (SELECT string_to_array(name, '/') AS parts) p, generate_series(0, cardinality(parts) - 1) n
$$;

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    admin       boolean NOT NULL DEFAULT false,
    -- bumped with every change to the user's grants: the API caches a user's roles by it (api.auth)
    grants_version  bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A token is shown once, as ocicat_<id>_<secret>; only the secret's SHA-256 is kept
-- (the secret is 256 random bits, so a fast hash is enough, as for GitHub's tokens).
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description   text NOT NULL DEFAULT '',
    secret_sha256 bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- GitLab's access levels: guest 10 < reporter 20 < developer 30 < maintainer 40 < owner 50.
-- (Its current body is in migrations/functions/, replaced on every migrate; this is the first version.)
CREATE FUNCTION role_level(role text) RETURNS int LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE role WHEN 'guest' THEN 10 WHEN 'reporter' THEN 20 WHEN 'developer' THEN 30
                     WHEN 'maintainer' THEN 40 WHEN 'owner' THEN 50 END
$$;

CREATE TABLE grants (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    path        text NOT NULL,
    role        text NOT NULL CHECK (role_level(role) IS NOT NULL),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, path)
);

-- The longest rule covering a repository decides; none: OCICAT_DEFAULT_VISIBILITY.
CREATE TABLE visibility_rules (
    path        text PRIMARY KEY,
    public      boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A repository's visibility under the current rules (NULL: no rule, the configured default).
-- (Its current body is in migrations/functions/, replaced on every migrate; this is the first version.)
CREATE FUNCTION path_public(name text) RETURNS boolean LANGUAGE sql STABLE STRICT AS $$
    SELECT v.public FROM visibility_rules v
     WHERE v.path = name OR v.path = ANY (path_ancestors(name))
     ORDER BY length(v.path) DESC LIMIT 1
$$;

-- Kept on every repository so each read filters with one row's columns, never a join:
-- ancestors (for grants on a prefix) and the visibility its rules give it.
ALTER TABLE repositories
    ADD COLUMN ancestors text[] GENERATED ALWAYS AS (path_ancestors(name)) STORED,
    ADD COLUMN public boolean;
UPDATE repositories SET public = path_public(name);
CREATE INDEX repositories_ancestors_idx ON repositories USING gin (ancestors);

-- Whether a grant covers a repository: the path itself (names) or anything below (prefixes). Each
-- ancestor is looked up on its own: "= ANY" of a constant array is a hash lookup, where
-- "ancestors && prefixes" compares every pair (50 us a row for 1,000 grants, bench/api.py); only
-- repositories nested deeper than four levels take that path for their deeper ancestors. The planner
-- inlines the function, and coalesce() keeps it from estimating the selectivity of every element of
-- the arrays, which cost more than the query itself for a user with 1,000 grants.
-- (Its current body is in migrations/functions/, replaced on every migrate; this is the first version.)
CREATE FUNCTION path_covered(name text, ancestors text[], names text[], prefixes text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(name = ANY (names) OR ancestors[1] = ANY (prefixes) OR ancestors[2] = ANY (prefixes)
                    OR ancestors[3] = ANY (prefixes) OR ancestors[4] = ANY (prefixes)
                    OR (cardinality(ancestors) > 4 AND ancestors[5:] && prefixes), false)
$$;
