-- depends: 0019.search_postings
-- transactional: false
-- The postings of the repositories already there (migration 0019's trigger keeps those written since), in batches of
-- 1,000 repositories, each committed on its own. A batch locks its repositories' rows against writes while it
-- rewrites their postings (FOR SHARE), so a writer waits for one batch at most, and a write before or after it is
-- in the postings either way. Run again after an interruption, it rewrites every batch. bench/api.py times it.
DO $$
DECLARE
    batch CONSTANT bigint := 1000;
    done bigint := 0;
    last_id bigint;
BEGIN
    SELECT coalesce(max(id), 0) INTO last_id FROM repositories;
    WHILE done < last_id LOOP
        PERFORM 1 FROM repositories WHERE id > done AND id <= done + batch FOR SHARE;
        DELETE FROM search_postings WHERE repository_id > done AND repository_id <= done + batch;
        INSERT INTO search_postings (term, repository_id, weight, updated_at, public)
        SELECT t.term, r.id, t.weight, r.updated_at, r.public
          FROM repositories r CROSS JOIN LATERAL search_terms(r.search) t
         WHERE r.id > done AND r.id <= done + batch AND r.manifest_count > 0;
        COMMIT;
        done := done + batch;
    END LOOP;
END
$$;
