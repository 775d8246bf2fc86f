-- depends: 0019.search_postings
-- The postings of the repositories no write has touched since migration 0019 (whose trigger keeps the others), in
-- one pass that locks nothing writers need: repositories are only read, and a refresh running meanwhile writes its
-- own rows, which this pass leaves alone (ON CONFLICT) or sees (NOT EXISTS). bench/api.py times it on its catalog.
CREATE TEMPORARY TABLE fill_started ON COMMIT DROP AS
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::xid AS oldest;
INSERT INTO search_postings (term, repository_id, weight, updated_at, public)
SELECT t.term, r.id, t.weight, r.updated_at, r.public
  FROM repositories r CROSS JOIN LATERAL search_terms(r.search) t
 WHERE r.manifest_count > 0 AND NOT EXISTS (SELECT 1 FROM search_postings p WHERE p.repository_id = r.id)
    ON CONFLICT (repository_id, term) DO NOTHING;
-- A repository rewritten while the pass ran may have got rows from the version the pass read: write its rows again
-- from the version committed now. (One rewritten after this statement gets its rows from the trigger.)
DELETE FROM search_postings p USING repositories r, fill_started f
 WHERE p.repository_id = r.id AND age(r.xmin) <= age(f.oldest);
INSERT INTO search_postings (term, repository_id, weight, updated_at, public)
SELECT t.term, r.id, t.weight, r.updated_at, r.public
  FROM repositories r CROSS JOIN LATERAL search_terms(r.search) t, fill_started f
 WHERE r.manifest_count > 0 AND age(r.xmin) <= age(f.oldest)
    ON CONFLICT (repository_id, term) DO NOTHING;
