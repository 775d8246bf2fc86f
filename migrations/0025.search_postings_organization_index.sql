-- depends: 0024.search_postings_organization_fill
-- transactional: false
-- The postings of each organization in the order search ranks (0023), and the public repositories' apart, as 0019
-- gives the whole catalog's, so a caller who sees little never reads hidden rows. Built concurrently: on a large
-- catalog these take minutes (bench/api.py times them), during which every write to a repository writes its
-- postings. (Processes waiting to migrate poll for the migration lock instead of waiting in a statement, which
-- would hold a snapshot the concurrent build waits for; see ocicat.migrate.) A build that fails leaves an invalid
-- index, which the next migrate's run of this file drops first.
DROP INDEX CONCURRENTLY IF EXISTS search_postings_organization_rank_idx;
CREATE INDEX CONCURRENTLY search_postings_organization_rank_idx
    ON search_postings (term, organization, weight DESC, updated_at DESC, repository_id DESC);
DROP INDEX CONCURRENTLY IF EXISTS search_postings_public_organization_rank_idx;
CREATE INDEX CONCURRENTLY search_postings_public_organization_rank_idx
    ON search_postings (term, organization, weight DESC, updated_at DESC, repository_id DESC)
    WHERE coalesce(public, false);
