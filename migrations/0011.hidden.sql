-- depends: 0010.readme_html
-- Search hits are collected from what the caller may see (ocicat.catalog.reads): for a caller who does not see
-- everything, from the public repositories and from those their roles cover. These partial indexes answer the
-- public part in a private catalog (OCICAT_DEFAULT_VISIBILITY private: coalesce(public, false)), so repositories
-- hidden from the caller are never read, and their number cannot be timed (bench/api.py).
CREATE INDEX repositories_public_search_idx ON repositories USING gin (search)
    WHERE manifest_count > 0 AND coalesce(public, false);
DO $$
BEGIN
    CREATE INDEX repositories_public_name_trgm_idx ON repositories USING gin (name gin_trgm_ops)
        WHERE manifest_count > 0 AND coalesce(public, false);
EXCEPTION WHEN undefined_object THEN
    RAISE NOTICE 'pg_trgm is not available: search works without typo tolerance';
END $$;
