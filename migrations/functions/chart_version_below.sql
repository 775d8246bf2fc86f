-- SemVer precedence on helm_charts.version_key (indexer.helm.version_order): is version key a below key b?
-- The keys of one release and its prereleases share the release's key as a prefix, the prereleases adding their
-- identifiers after "\x01", so byte order alone would put 1.0.0 below 1.0.0-rc.1: the release part is compared
-- first, and a prerelease is below its own release.
CREATE OR REPLACE FUNCTION chart_version_below(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS $$ SELECT split_part(a, E'\x01', 1) COLLATE "C" < split_part(b, E'\x01', 1) COLLATE "C"
              OR (split_part(a, E'\x01', 1) = split_part(b, E'\x01', 1) AND strpos(a, E'\x01') > 0
                  AND (strpos(b, E'\x01') = 0 OR a COLLATE "C" < b COLLATE "C")) $$;
