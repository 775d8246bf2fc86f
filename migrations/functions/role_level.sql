-- GitLab's access levels: guest 10 < reporter 20 < developer 30 < maintainer 40 < owner 50 (ocicat.accounts.LEVELS).
CREATE OR REPLACE FUNCTION role_level(role text) RETURNS int LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE role WHEN 'guest' THEN 10 WHEN 'reporter' THEN 20 WHEN 'developer' THEN 30
                     WHEN 'maintainer' THEN 40 WHEN 'owner' THEN 50 END
$$;
