-- A chart version's Chart.yaml as an entry of a Helm repository's index.yaml, JSON text with the keys in alphabetical
-- order as `helm repo index` writes them, empty fields left out. Written once, when the chart is indexed
-- (helm_charts.index_entry, ocicat.catalog.writes); an index adds `created`, `digest` and `urls` to each
-- (ocicat.catalog.helm_repository). Written in PostgreSQL: an index of 10,000 versions is then put together from
-- stored text, where writing the entries anew, in Python or in SQL, took over a second (bench/helmrepo.py).
--
-- Only values of the types Helm's structs decode are written, and only the keys it knows: a maintainer's email that
-- is a number would make Helm refuse the whole index (encoding/json; older Helm's strict YAML refuses unknown keys
-- too). The indexer checks the types of every top-level field (indexer.helm); the insides of maintainers and
-- dependencies, maps of anything, are checked here.
CREATE OR REPLACE FUNCTION helm_index_entry(c helm_charts) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT json_strip_nulls(json_build_object(
        'annotations', CASE WHEN c.annotations <> '{}' THEN c.annotations END,
        'apiVersion', nullif(c.api_version, ''),
        'appVersion', nullif(c.app_version, ''),
        'condition', nullif(c.condition, ''),
        'dependencies', CASE WHEN c.dependencies <> '[]' THEN (
            SELECT json_agg(json_strip_nulls(json_build_object(
                       'alias', CASE WHEN jsonb_typeof(d -> 'alias') = 'string' THEN nullif(d ->> 'alias', '') END,
                       'condition', CASE WHEN jsonb_typeof(d -> 'condition') = 'string'
                                         THEN nullif(d ->> 'condition', '') END,
                       'enabled', CASE WHEN d -> 'enabled' = 'true' THEN true END,
                       'import-values', CASE WHEN jsonb_typeof(d -> 'import-values') = 'array'
                                              AND d -> 'import-values' <> '[]' THEN d -> 'import-values' END,
                       'name', CASE WHEN jsonb_typeof(d -> 'name') = 'string' THEN nullif(d ->> 'name', '') END,
                       'repository', CASE WHEN jsonb_typeof(d -> 'repository') = 'string'
                                          THEN nullif(d ->> 'repository', '') END,
                       'tags', (SELECT json_agg(t) FROM jsonb_array_elements(CASE jsonb_typeof(d -> 'tags')
                                                                             WHEN 'array' THEN d -> 'tags' END) t
                                 WHERE jsonb_typeof(t) = 'string'),
                       'version', CASE WHEN jsonb_typeof(d -> 'version') = 'string'
                                       THEN nullif(d ->> 'version', '') END)))
              FROM jsonb_array_elements(c.dependencies) d) END,
        'deprecated', CASE WHEN c.deprecated THEN true END,
        'description', nullif(c.description, ''),
        'home', nullif(c.home, ''),
        'icon', nullif(c.icon, ''),
        'keywords', CASE WHEN c.keywords <> '[]' THEN c.keywords END,
        'kubeVersion', nullif(c.kube_version, ''),
        'maintainers', CASE WHEN c.maintainers <> '[]' THEN (
            SELECT json_agg(m.entry) FROM (
                SELECT json_strip_nulls(json_build_object(
                           'email', CASE WHEN jsonb_typeof(x -> 'email') = 'string' THEN nullif(x ->> 'email', '') END,
                           'name', CASE WHEN jsonb_typeof(x -> 'name') = 'string' THEN nullif(x ->> 'name', '') END,
                           'url', CASE WHEN jsonb_typeof(x -> 'url') = 'string' THEN nullif(x ->> 'url', '') END
                       )) AS entry
                  FROM jsonb_array_elements(c.maintainers) x) m
             WHERE m.entry::text <> '{}') END,
        'name', c.name,
        'sources', CASE WHEN c.sources <> '[]' THEN c.sources END,
        'tags', nullif(c.tags, ''),
        'type', nullif(c.type, ''),
        'version', c.version))::text
$$;
