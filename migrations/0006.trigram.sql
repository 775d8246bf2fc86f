-- depends: 0005.access
-- Typo tolerance for search where pg_trgm can be had (PostgreSQL's contrib; trusted since PostgreSQL 13,
-- so a database owner may create it). Without it, search is full text only: nothing else changes.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX repositories_name_trgm_idx ON repositories USING gin (name gin_trgm_ops);
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported OR undefined_object THEN
    RAISE NOTICE 'pg_trgm is not available (%): search works without typo tolerance', SQLERRM;
END $$;
