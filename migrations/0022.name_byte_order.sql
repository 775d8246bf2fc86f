-- depends: 0021.organization_order
-- The lists by name in byte order (COLLATE "C"), whatever the database's collation, so that everything below a
-- namespace is one range of names ([ns + "/", ns + "0"), "0" following "/"): a user's roles are then a few hundred
-- disjoint ranges in the list's own order, and their first page is read from the first ranges after the cursor
-- (ocicat.catalog.reads.list_repositories) instead of from a walk over every repository hidden from them (5,000 rows
-- for a reporter on 1% of the namespaces). Byte order is also the registry's own (/v2/_catalog); under a linguistic
-- collation such as en_US, "a/b" and "a-c" interleave and a subtree is no range at all.
-- The same four indexes as 0009's and 0021's name indexes, in the new order, which replace them.
-- Built in this transaction, as 0019's and 0021's (bench/api.py times the build on its catalog).
CREATE INDEX repositories_byte_name_idx ON repositories ((name COLLATE "C"))
    WHERE manifest_count > 0;
CREATE INDEX repositories_public_byte_name_idx ON repositories ((name COLLATE "C"))
    WHERE manifest_count > 0 AND coalesce(public, false);
CREATE INDEX repositories_organization_byte_name_idx ON repositories ((split_part(namespace, '/', 1)), (name COLLATE "C"))
    WHERE manifest_count > 0;
CREATE INDEX repositories_public_organization_byte_name_idx
    ON repositories ((split_part(namespace, '/', 1)), (name COLLATE "C"))
    WHERE manifest_count > 0 AND coalesce(public, false);
DROP INDEX repositories_public_name_idx;
DROP INDEX repositories_organization_name_idx;
DROP INDEX repositories_public_organization_name_idx;
