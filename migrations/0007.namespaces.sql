-- depends: 0006.trigram
-- Browsing by path: the child namespaces of a namespace, a page at a time, without reading its whole subtree.
-- The key spells "/" as " ", which sorts (in byte order) below every character a name may hold, so a
-- namespace and everything below it form one contiguous range, and ocicat.catalog.reads.list_namespaces skips
-- from one child to the next with one index probe each.
CREATE INDEX repositories_namespace_tree_idx ON repositories ((replace(namespace, '/', ' ') COLLATE "C"))
    WHERE manifest_count > 0;
