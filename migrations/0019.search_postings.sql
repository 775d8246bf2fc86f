-- depends: 0018.queue_by_repository
-- Search bounded by the page (ocicat.catalog.search): one row per term of each listed repository's search document
-- (search_terms), in an index ordered as search ranks (term, then field weight, then recency), so the first page of
-- any query reads about a page of rows however many repositories match. The public repositories' rows have an index
-- of their own, as migration 0011 gives the search document, so callers who see little never read hidden rows.
-- Kept by a trigger on repositories (search_postings_sync), created here on the empty table, so every write from
-- this commit on keeps them; migration 0020 fills in the rest.
CREATE TABLE search_postings (
    term          text COLLATE "C" NOT NULL,
    repository_id bigint NOT NULL,
    weight        smallint NOT NULL,
    updated_at    timestamptz NOT NULL,
    public        boolean,
    PRIMARY KEY (repository_id, term)
);
CREATE INDEX search_postings_rank_idx ON search_postings (term, weight DESC, updated_at DESC, repository_id DESC);
CREATE INDEX search_postings_public_rank_idx ON search_postings (term, weight DESC, updated_at DESC, repository_id DESC)
    WHERE coalesce(public, false);
-- Exact names rank first: repositories whose last name part is the query, newest first; the public ones' apart, for
-- callers who see little (as above). Built in this transaction (writers wait for the build, which bench/api.py times
-- on its catalog), not concurrently: a concurrent build would wait for the other processes starting at the same
-- moment, which hold a snapshot while they wait for the migration lock (see 0018).
CREATE INDEX repositories_last_name_idx ON repositories ((split_part(name, '/', -1)), updated_at DESC, id DESC)
    WHERE manifest_count > 0;
CREATE INDEX repositories_public_last_name_idx ON repositories ((split_part(name, '/', -1)), updated_at DESC, id DESC)
    WHERE manifest_count > 0 AND coalesce(public, false);

-- The search postings of a repository's search document: every word of
-- three letters or more, and the first one and two letters of every word, each with the best field it is in
-- (4: A, name and title; 3: B, description; 2: C, keywords and maintainers; 1: D, annotations and namespace).
-- A query word of one or two letters is looked up as one of those prefixes; a longer one as the words it begins,
-- so every query word is a prefix, as the tsquery 'word':* it replaces. Prefixes stop at two letters: a third
-- would add a row per word for queries that find few words to expand to anyway.
CREATE FUNCTION search_terms(document tsvector) RETURNS TABLE (term text, weight smallint)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT k.term COLLATE "C", max(w.weight)::smallint
      FROM unnest(document) u
     CROSS JOIN LATERAL (SELECT coalesce(max(4 - (ascii(x::text) - ascii('A'))), 1) AS weight
                           FROM unnest(u.weights) x) w
     CROSS JOIN LATERAL (SELECT u.lexeme WHERE length(u.lexeme) >= 3
                         UNION SELECT left(u.lexeme, 1)
                         UNION SELECT left(u.lexeme, 2)) k(term)
     GROUP BY k.term
$$;

-- Keeps search_postings equal to what search_terms gives each listed repository's search document,
-- with its recency and visibility: rewritten when one of those changes, whoever writes the repository (the
-- worker's refresh, a visibility rule, a migration), so no writer can forget them.
CREATE FUNCTION search_postings_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.search = OLD.search AND NEW.updated_at = OLD.updated_at
       AND NEW.public IS NOT DISTINCT FROM OLD.public AND (NEW.manifest_count > 0) = (OLD.manifest_count > 0) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM search_postings WHERE repository_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.manifest_count > 0 THEN
        INSERT INTO search_postings (term, repository_id, weight, updated_at, public)
        SELECT t.term, NEW.id, t.weight, NEW.updated_at, NEW.public FROM search_terms(NEW.search) t;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER repositories_search_postings
    AFTER INSERT OR DELETE OR UPDATE OF search, updated_at, public, manifest_count ON repositories
    FOR EACH ROW EXECUTE FUNCTION search_postings_sync();
CREATE FUNCTION search_postings_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE search_postings;
    RETURN NULL;
END
$$;
CREATE TRIGGER repositories_search_postings_truncate AFTER TRUNCATE ON repositories
    FOR EACH STATEMENT EXECUTE FUNCTION search_postings_truncate();
