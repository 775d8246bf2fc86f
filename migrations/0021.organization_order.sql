-- depends: 0020.search_postings_fill
-- An organization's repositories (a top-level namespace and everything below it) in the lists' two orders, so that
-- a list filtered by an organization reads its page and stops (ocicat.catalog.reads.IN_SUBTREE). Through the
-- namespace tree index (0007) such a list read every repository of the organization and sorted them: 6,000 at 10
-- million tags, random reads once the catalog is larger than memory (bench/api.py's mixed load). The public
-- repositories' own, as migration 0009 gives the other orders, so a caller who sees little never reads hidden rows.
-- Built in this transaction, as 0019's (writers wait for the build, which bench/api.py times on its catalog).
CREATE INDEX repositories_organization_name_idx ON repositories ((split_part(namespace, '/', 1)), name)
    WHERE manifest_count > 0;
CREATE INDEX repositories_organization_updated_idx
    ON repositories ((split_part(namespace, '/', 1)), updated_at DESC, name DESC)
    WHERE manifest_count > 0;
CREATE INDEX repositories_public_organization_name_idx ON repositories ((split_part(namespace, '/', 1)), name)
    WHERE manifest_count > 0 AND coalesce(public, false);
CREATE INDEX repositories_public_organization_updated_idx
    ON repositories ((split_part(namespace, '/', 1)), updated_at DESC, name DESC)
    WHERE manifest_count > 0 AND coalesce(public, false);
