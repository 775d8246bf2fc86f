-- depends: 0025.search_postings_organization_index
-- transactional: false
-- An organization's chart repositories by name (byte order, as 0022), so that its chart list reads its page and
-- stops (ocicat.catalog.reads.list_charts). Through 0022's organization index it read the organization's
-- repositories by name until 50 held a chart, most of them images: at 10 million tags, random reads once the catalog
-- is larger than memory (p95 163 ms in bench/api.py's mixed load). The public repositories' own, as 0021's.
-- Built concurrently, as 0025's.
DROP INDEX CONCURRENTLY IF EXISTS repositories_organization_chart_name_idx;
CREATE INDEX CONCURRENTLY repositories_organization_chart_name_idx
    ON repositories ((split_part(namespace, '/', 1)), (name COLLATE "C"))
    WHERE manifest_count > 0 AND latest_chart_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS repositories_public_organization_chart_name_idx;
CREATE INDEX CONCURRENTLY repositories_public_organization_chart_name_idx
    ON repositories ((split_part(namespace, '/', 1)), (name COLLATE "C"))
    WHERE manifest_count > 0 AND latest_chart_id IS NOT NULL AND coalesce(public, false);
