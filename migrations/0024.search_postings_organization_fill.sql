-- depends: 0023.search_postings_organization
-- transactional: false
-- The organization of the postings written before 0023 (its trigger writes it on every posting since), in batches of
-- 1,000 repositories, each committed on its own, so a writer waits for one batch at most. Only rows without one are
-- updated: a repository's organization never changes, so a row the trigger rewrote meanwhile is already right, and
-- a run after an interruption goes on where it stopped. bench/api.py times it.
DO $$
DECLARE
    batch CONSTANT bigint := 1000;
    done bigint := 0;
    last_id bigint;
BEGIN
    SELECT coalesce(max(id), 0) INTO last_id FROM repositories;
    WHILE done < last_id LOOP
        UPDATE search_postings p SET organization = split_part(r.namespace, '/', 1)
          FROM repositories r
         WHERE r.id = p.repository_id AND p.repository_id > done AND p.repository_id <= done + batch
           AND p.organization IS NULL;
        COMMIT;
        done := done + batch;
    END LOOP;
END
$$;
