-- depends: 0022.name_byte_order
-- Search filtered by an organization (a top-level namespace) read in rank order (ocicat.catalog.search): each
-- posting carries its repository's organization, and migration 0025 indexes the postings by (term, organization)
-- in the order search ranks. Walking the whole catalog's postings instead passes every hit outside the organization:
-- at 10 million tags an organization is 1% of the catalog, and such a search read 100 postings for each one it kept
-- (997 ms in bench/api.py's mixed load). A repository's organization never changes (it is part of its name).
-- The trigger writes the column from this commit on, so that 0024's fill, which sets it on the rows already there,
-- leaves none without it; its body is replaced here, not in migrations/functions/, because 0024 needs it in effect
-- before it runs (functions/ are replaced after every numbered migration).
ALTER TABLE search_postings ADD COLUMN organization text COLLATE "C";

CREATE OR REPLACE FUNCTION search_postings_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.search = OLD.search AND NEW.updated_at = OLD.updated_at
       AND NEW.public IS NOT DISTINCT FROM OLD.public AND (NEW.manifest_count > 0) = (OLD.manifest_count > 0) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM search_postings WHERE repository_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.manifest_count > 0 THEN
        INSERT INTO search_postings (term, repository_id, weight, updated_at, public, organization)
        SELECT t.term, NEW.id, t.weight, NEW.updated_at, NEW.public, split_part(NEW.namespace, '/', 1)
          FROM search_terms(NEW.search) t;
    END IF;
    RETURN NULL;
END
$$;
