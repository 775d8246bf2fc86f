-- The first key of chart version order: 0 release, 1 prerelease, 2 not SemVer (helm_charts.prerelease NULL).
-- Then helm_charts.version_key descending (indexer.helm.version_order).
CREATE OR REPLACE FUNCTION chart_version_rank(prerelease boolean) RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN prerelease IS NULL THEN 2 WHEN prerelease THEN 1 ELSE 0 END $$;
