"""Search whose cost is bounded by the page, not by the number of hits.

Ranking: exact names first (the query is the whole name or its last part),
then the text rank, then recency (``updated_at``), then the repository id. The
text rank is the field a query's words are found in: each word counts by the
best field holding a word it begins (4: name and title, 3: description, 2:
keywords and maintainers, 1: annotations and namespace), and a hit ranks by
its weakest word. So a rank is one of four values, and a word's hits in rank
order are an index range: ``search_postings`` (migration 0019) holds a row per
term of every repository's search document, ordered by term, weight and
recency, kept by a trigger whoever writes the repository.

The first page of a query is read from those rows in index order: for each
rank from the best down, the newest hits of one word (the driver, the longest:
most likely the rarest), a page of them per term it expands to and per weight
that can give that rank, each checked for its rank from its search document.
The page is the best of those candidates, and it is exactly the page an
exhaustive ranking gives (tests/integration/test_search_bounded.py compares
them on generated catalogs and queries): a hit of rank t is among the first
page-many of its own term's list at its own weight, since everything ahead of
it there ranks ahead of it overall. Its cost is pages times terms times
weights, whatever the number of hits; a query of several common words that
rarely occur together walks the driver's rows until it has a page, as any
conjunctive index does. A namespace filter walks its organization's postings
(each posting carries its repository's organization, migrations 0023-0025),
and one over a small subtree ranks the subtree's hits instead (SMALL_SUBTREE):
walking would pass every hit of the organization outside it.

Counts and facets are exact up to :data:`COUNT_BOUND` hits and estimates past
it: the facets are then counted over the first hits found (``estimate`` is
true), and the total is the bound, shown as "1,000+" (never more than the true
count). Search engines do the same; an exact count of 15,000 matches costs
what reading them costs.

What a caller may not see is never read where the catalog is private: the
public repositories' rows have indexes of their own, and the repositories a
caller's roles cover are ranked from those roles (visibility.GRANTED),
exhaustively: their cost is bounded by what the caller may see.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from .reads import IN_KIND, IN_SUBTREE, query_words, subtree
from .visibility import GRANTED, Visibility

COUNT_BOUND = 1_000  # hits counted exactly; past this many, counts and facets are estimates
# A namespace filter whose subtree holds at most this many repositories (that the caller sees without roles) is
# answered from the subtree, all its hits ranked; a larger one by walking its organization's postings (migration
# 0025), most of which are then inside it.
SMALL_SUBTREE = 2_000
SHORT = 2  # query words this short are prefix terms of their own (search_terms); longer ones expand to words
WEIGHTS = (4, 3, 2, 1)  # A to D, as search_terms gives them
NAMESPACE_FACET_SIZE = 50
# Typo tolerance (migration 0006, where pg_trgm exists): when the text matches nothing, repositories
# whose name holds a word similar to the query, most similar first. pg_trgm's default threshold (0.6)
# misses a swapped pair of letters ("ngnix" is 0.33 like nginx), hence 0.3; the hits are capped
# because a low threshold over a large catalog matches much that ranking puts far down anyway.
SIMILARITY_THRESHOLD = 0.3
MAX_SIMILAR_HITS = 1000
# a search hit's cursor key, and its SQL types
KEY = (lambda row: [row["exact"], row["rank"], row["updated_at"], row["id"]], ("int4", "real", "timestamptz", "int8"))

_FILTERS = f"{IN_SUBTREE} AND {IN_KIND}"
_EXACT = "(r.name = lower(%(q)s) OR split_part(r.name, '/', -1) = lower(%(q)s))"
_MATCH = "r.search @@ %(tsquery)s::tsquery"
# The posting p is in the namespace filter's organization (params: in_organization, None without a filter): with
# it, the walk reads the organization's own postings in rank order (migration 0025), not the whole catalog's.
_IN_ORGANIZATION = "(%(in_organization)s::text IS NULL OR p.organization = %(in_organization)s)"


class Query:
    """The words of a query (its lexemes, each a prefix) and the SQL that finds and ranks their hits."""

    def __init__(self, words: list[str], tsquery: str):
        self.words = words
        self.tsquery = tsquery
        # The driver: the longest word, most likely the rarest (the first of the longest).
        self.driver = max(range(len(words)), key=lambda i: len(words[i]))

    @property
    def params(self) -> dict:
        params = {"tsquery": self.tsquery, "driver_stop": _successor(self.words[self.driver])}
        params.update((f"w{i}", word) for i, word in enumerate(self.words))
        return params

    def keys(self, seen: Visibility) -> str:
        """A CTE (of WITH RECURSIVE): the terms the driver word stands for among the postings the caller sees
        without roles. A long word expands to the words it begins, a skip scan of the postings index (the public
        rows' own, for a caller who does not see everything), one probe per word."""
        d = self.driver
        if len(self.words[d]) <= SHORT:
            return f"keys(term) AS (SELECT %(w{d})s::text COLLATE \"C\")"
        return f"""keys(term) AS (
            SELECT min(p.term) FROM search_postings p
             WHERE p.term >= %(w{d})s AND p.term < %(driver_stop)s AND {_unhidden(seen, 'p')}
            UNION ALL
            SELECT (SELECT min(p.term) FROM search_postings p
                     WHERE p.term > k.term AND p.term < %(driver_stop)s AND {_unhidden(seen, 'p')})
              FROM keys k WHERE k.term IS NOT NULL)"""

    @property
    def one_term(self) -> bool:
        """One word standing for one term: a posting's weight is then its hit's rank."""
        return len(self.words) == 1 and len(self.words[0]) <= SHORT

    def rank(self, repository: str) -> str:
        """SQL: the text rank of ``repository`` (a repositories row; 0: not a hit), from its search document: a
        word's rank is the best field that has a word it begins ('word':*A matches only words in field A), the
        rank of a hit its weakest word's. search_terms gives the postings the same ranks."""
        def word(i: int) -> str:
            return " ".join(f"WHEN {repository}.search @@ (quote_literal(%(w{i})s) || ':*{field}')::tsquery"
                            f" THEN {weight}" for field, weight in zip("ABCD", WEIGHTS))
        ranks = [f"CASE {word(i)} ELSE 0 END" for i in range(len(self.words))]
        return ranks[0] if len(ranks) == 1 else f"least({', '.join(ranks)})"


def _successor(word: str) -> str:
    """The first string past every string that begins with ``word`` (in code point order, which is the "C"
    collation's order of UTF-8)."""
    while word and ord(word[-1]) == 0x10FFFF:
        word = word[:-1]
    return word[:-1] + chr(ord(word[-1]) + 1) if word else "\U0010ffff"


def _unhidden(seen: Visibility, alias: str) -> str:
    """SQL: the posting or repository ``alias`` is one the caller sees without roles (all of them, for an
    administrator); with coalesce(public, false) the planner takes the public rows' partial indexes."""
    return "true" if seen.everything else f"coalesce({alias}.public, %(default_public)s)"


def _granted(seen: Visibility) -> bool:
    """Whether the caller's roles add repositories to what they see without them."""
    return not seen.everything and bool(seen.names or seen.prefixes)


def _page_sql(query: Query, seen: Visibility, after: list | None, scan: bool) -> str:
    """SQL: the ids of one page of the hits the caller sees without roles, with their cursor keys, best first
    (params: limit, the cursor's c_*). With ``scan``, the namespace filter's subtree is small (SMALL_SUBTREE) and
    its hits are ranked all, from the subtree, instead of walking the postings past the hits outside it."""
    after_exact = None if after is None else after[0]
    parts = []
    if after_exact in (None, 1):
        cursor = ("" if after_exact is None
                  else "AND (e.rank, e.updated_at, e.id) < (%(c_rank)s, %(c_updated)s, %(c_id)s)")
        parts.append(f"""(SELECT * FROM (
            SELECT r.id, 1 AS exact, {query.rank('r')} AS rank, r.updated_at FROM repositories r
             WHERE r.manifest_count > 0 AND {_EXACT} AND {_unhidden(seen, 'r')} AND {_FILTERS} AND {_MATCH}) e
            WHERE true {cursor} ORDER BY e.rank DESC, e.updated_at DESC, e.id DESC LIMIT %(limit)s)""")
    text_cursor = after_exact == 0
    if scan:
        cursor = "AND (s.rank, s.updated_at, s.id) < (%(c_rank)s, %(c_updated)s, %(c_id)s)" if text_cursor else ""
        parts.append(f"""(SELECT * FROM ({_subtree_hits(query, seen)}) s
            WHERE true {cursor} ORDER BY s.rank DESC, s.updated_at DESC, s.id DESC LIMIT %(limit)s)""")
    for tier in () if scan else WEIGHTS:
        if text_cursor and tier > after[1]:
            continue
        weights = (tier,) if len(query.words) == 1 else tuple(w for w in WEIGHTS if w >= tier)
        # the rank is the posting's weight for one term; else checked (a hit's best term, or its weakest word)
        rank_check = "" if query.one_term else f"AND {query.rank('r')} = {tier}"
        cursor = ("AND (p.updated_at, p.repository_id) < (%(c_updated)s, %(c_id)s)"
                  if text_cursor and tier == after[1] else "")
        parts.append(f"""(SELECT s.id, 0 AS exact, {tier} AS rank, s.updated_at
              FROM keys k CROSS JOIN unnest(ARRAY{list(weights)}::smallint[]) w(weight)
             CROSS JOIN LATERAL (
                SELECT p.repository_id AS id, p.updated_at FROM search_postings p
                  JOIN repositories r ON r.id = p.repository_id
                 WHERE p.term = k.term AND p.weight = w.weight AND {_unhidden(seen, 'p')} AND {_IN_ORGANIZATION}
                   {cursor}
                   AND r.manifest_count > 0 AND {_unhidden(seen, 'r')}
                   AND {_FILTERS} AND NOT {_EXACT} {rank_check}
                 ORDER BY p.updated_at DESC, p.repository_id DESC LIMIT %(limit)s) s
             GROUP BY s.id, s.updated_at ORDER BY s.updated_at DESC, s.id DESC LIMIT %(limit)s)""")
    return f"""
    WITH RECURSIVE {query.keys(seen)}
    SELECT h.id, h.exact, h.rank::real AS rank, h.updated_at FROM ({' UNION ALL '.join(parts)}) h
     ORDER BY h.exact DESC, h.rank DESC, h.updated_at DESC, h.id DESC LIMIT %(limit)s
    """


def _in_subtree(seen: Visibility) -> str:
    """SQL: the repository r is a hit in the namespace filter's subtree that the caller sees without roles (read
    from the organization or name indexes, the public repositories' own for a caller who does not see
    everything)."""
    return f"r.manifest_count > 0 AND {_unhidden(seen, 'r')} AND {_FILTERS} AND {_MATCH}"


def _subtree_hits(query: Query, seen: Visibility) -> str:
    """SQL: :func:`_in_subtree`'s hits but exact names, ranked."""
    return f"""
    SELECT r.id, 0 AS exact, {query.rank('r')} AS rank, r.updated_at FROM repositories r
     WHERE {_in_subtree(seen)} AND NOT {_EXACT}
    """


def _subtree_size_sql(seen: Visibility) -> str:
    """SQL: the repositories in the namespace filter's subtree that the caller sees without roles, counted up to
    SMALL_SUBTREE + 1 (params: small)."""
    return f"""
    SELECT count(*) AS size FROM (SELECT 1 FROM repositories r
     WHERE r.manifest_count > 0 AND {_unhidden(seen, 'r')} AND {IN_SUBTREE} LIMIT %(small)s + 1) s
    """


def _found_sql(query: Query, seen: Visibility, filtered: bool) -> str:
    """SQL: up to COUNT_BOUND + 1 hits among what the caller sees without roles, the best of each term first (all
    of them when there are no more), counted by namespace and kinds, as JSON (params: bound): a thousand counts as
    Python rows cost more than the statement. With ``filtered``, only those the namespace and kind filters keep,
    read from the filter's organization's postings.

    A posting's repository is looked up only when a filter or another word must be checked, and then by a scalar
    subquery, one primary-key probe a posting: as a join the planner hashed the whole repositories table instead."""
    checks = ([_FILTERS] if filtered else []) + ([_MATCH] if len(query.words) > 1 else [])
    check = f"AND (SELECT {' AND '.join(checks)} FROM repositories r WHERE r.id = p.repository_id)" if checks else ""
    organization = f"AND {_IN_ORGANIZATION}" if filtered else ""
    return f"""
    WITH RECURSIVE {query.keys(seen)},
    found AS (
        SELECT DISTINCT s.id FROM keys k CROSS JOIN LATERAL (
            SELECT p.repository_id AS id FROM search_postings p
             WHERE p.term = k.term AND {_unhidden(seen, 'p')} {organization} {check}
             ORDER BY p.weight DESC, p.updated_at DESC, p.repository_id DESC LIMIT %(bound)s + 1) s
         LIMIT %(bound)s + 1)
    SELECT coalesce(json_agg(g), '[]') AS counts FROM (
        SELECT r.namespace, r.kinds, count(*) AS hits FROM found f JOIN repositories r ON r.id = f.id
         GROUP BY r.namespace, r.kinds) g
    """


def _granted_sql(query: Query) -> str:
    """SQL: the hits among the repositories the caller's roles add to what they see without them, each once (roles
    can nest), found from the roles (visibility.GRANTED), so their cost is what the caller may see: counted by
    namespace and kinds, counted through the filters, and the best page-many after the cursor (params: limit, c_*),
    as JSON, so that thousands of hits cost PostgreSQL what they cost and not a round of Python objects each."""
    return f"""
    WITH hits AS MATERIALIZED (
        SELECT DISTINCT ON (r.id) r.id, {_EXACT}::int AS exact, {query.rank('r')}::real AS rank, r.updated_at,
               r.name, r.namespace, r.kinds
          FROM ({GRANTED}) r
         WHERE r.manifest_count > 0 AND {_MATCH} AND NOT coalesce(r.public, %(default_public)s))
    SELECT (SELECT coalesce(json_agg(g), '[]') FROM (SELECT namespace, kinds, count(*) AS hits FROM hits
                                                     GROUP BY namespace, kinds) g) AS counts,
           (SELECT count(*) FROM hits r WHERE {_FILTERS}) AS kept,
           (SELECT coalesce(json_agg(p ORDER BY p.exact DESC, p.rank DESC, p.updated_at DESC, p.id DESC), '[]')
              FROM (SELECT id, exact, rank, updated_at FROM hits r
                     WHERE {_FILTERS} AND (%(c_rank)s::real IS NULL OR (r.exact, r.rank, r.updated_at, r.id)
                                           < (%(c_exact)s, %(c_rank)s, %(c_updated)s, %(c_id)s))
                     ORDER BY exact DESC, rank DESC, updated_at DESC, id DESC LIMIT %(limit)s) p) AS page
    """


def _facets(found: list[dict], namespace: str | None, kind: str | None) -> dict:
    """Facet counts over hits, each facet ignoring its own filter (so choosing a kind does not hide the other
    kinds' counts, as Artifact Hub does)."""
    kinds, namespaces = Counter(), Counter()
    for row in found:
        hits = row["hits"]
        if _within(row["namespace"], namespace):
            for value in row["kinds"]:
                kinds[value] += hits
        if kind is None or kind in row["kinds"]:
            namespaces[row["namespace"]] += hits
    return {"kind": _counts(kinds), "namespace": _counts(namespaces)[:NAMESPACE_FACET_SIZE]}


def _counts(counter: Counter) -> list[dict]:
    return [{"value": value, "count": count} for value, count in sorted(counter.items(), key=lambda x: (-x[1], x[0]))]


_DETAILS = """
SELECT r.id, r.name, r.namespace, r.updated_at, r.kinds, latest.*
  FROM repositories r
  LEFT JOIN LATERAL (
    SELECT coalesce(c.name, m.metadata->>'title') AS title,
           coalesce(c.description, m.metadata->>'description') AS description,
           c.version AS chart_version, c.app_version, c.upgrade_report - 'items' - 'notes' AS upgrade
      FROM (SELECT * FROM manifests WHERE repository_id = r.id AND subject_digest IS NULL
             ORDER BY pushed_at DESC, id DESC LIMIT 1) m
      LEFT JOIN helm_charts c ON c.manifest_id = m.id) latest ON true
 WHERE r.id = ANY (%(ids)s::bigint[])
"""


def _with_details(cur, keys: list[dict]) -> list[dict]:
    """The page's hits with what a hit shows (its newest manifest's title, description, chart version)."""
    cur.execute(_DETAILS, {"ids": [key["id"] for key in keys]})
    details = {row["id"]: row for row in cur.fetchall()}
    return [{**details[key["id"]], **key} for key in keys if key["id"] in details]


def search(cur, seen: Visibility, *, q: str, namespace, kind, after: list | None,
           limit: int) -> tuple[list[dict], dict, dict, bool]:
    """One page of hits, the facet counts, the number of hits (``{"count", "estimate"}``), and whether the hits
    are only similar names (no text matched). Only what the caller may see is ever read, so no count or facet
    reveals a hidden repository."""
    seen = seen.within(None)
    words, tsquery = query_words(cur, q)
    within = subtree(namespace)
    params = {**seen.params, **within, "in_organization": within["namespace"] and within["namespace"].split("/")[0],
              "kind": kind, "q": q, "limit": limit, "bound": COUNT_BOUND,
              "small": SMALL_SUBTREE,
              **dict(zip(("c_exact", "c_rank", "c_updated", "c_id"), after or [None] * 4))}
    if not words:
        return _similar(cur, seen, params, after, limit)
    query = Query(words, tsquery)
    params.update(query.params)
    cur.execute(_found_sql(query, seen, filtered=False), params)
    found = cur.fetchone()["counts"]
    granted = {"counts": [], "kept": 0, "page": []}
    if _granted(seen):
        cur.execute(_granted_sql(query), params)
        granted = cur.fetchone()
    hits = found + granted["counts"]  # apart: the granted hits are those the caller sees by their roles only
    if not hits:
        return _similar(cur, seen, params, after, limit)
    complete = sum(row["hits"] for row in hits) <= COUNT_BOUND
    facets = _facets(hits, namespace, kind)
    scan = False
    if namespace is not None:
        cur.execute(_subtree_size_sql(seen), params)
        scan = cur.fetchone()["size"] <= SMALL_SUBTREE
    if complete or (namespace is None and kind is None):
        matched = sum(row["hits"] for row in hits if _kept(row, namespace, kind))
    elif scan:
        cur.execute(f"SELECT count(*) AS hits FROM repositories r WHERE {_in_subtree(seen)}", params)
        matched = cur.fetchone()["hits"] + granted["kept"]
    else:
        cur.execute(_found_sql(query, seen, filtered=True), params)
        matched = sum(row["hits"] for row in cur.fetchone()["counts"]) + granted["kept"]
    total = {"count": min(matched, COUNT_BOUND), "estimate": not complete if namespace is None and kind is None
             else matched > COUNT_BOUND}
    cur.execute(_page_sql(query, seen, after, scan), params)
    page = cur.fetchall() + [{**row, "updated_at": datetime.fromisoformat(row["updated_at"])}
                             for row in granted["page"]]
    page = sorted(page, key=_key, reverse=True)[:limit]
    return _with_details(cur, page), {**facets, "estimate": not complete}, total, False


def _key(row: dict) -> tuple:
    return (row["exact"], row["rank"], row["updated_at"], row["id"])


def _kept(row: dict, namespace: str | None, kind: str | None) -> bool:
    """Whether the namespace and kind filters keep the hit."""
    return (kind is None or kind in row["kinds"]) and _within(row["namespace"], namespace)


def _within(name: str, namespace: str | None) -> bool:
    return namespace is None or name == namespace or name.startswith(namespace + "/")


_SIMILAR = """
SELECT r.id, r.namespace, r.kinds, r.updated_at, 0 AS exact, word_similarity(%(q)s, r.name) AS rank, 1 AS hits
  FROM {source} r WHERE r.manifest_count > 0 AND %(q)s <%% r.name AND {visible}
 ORDER BY rank DESC, r.id DESC LIMIT {cap}
"""


def _similar_sql(seen: Visibility) -> str:
    """SQL: the similar names the caller sees without roles (by the public repositories' partial indexes, migration
    0011), and those their roles cover, found from the roles (visibility.GRANTED) and checked as they are read (a
    materialized CTE of them copied their whole rows first: 14 ms of 44 for a reporter's 6,000 repositories)."""
    unhidden = _SIMILAR.format(source="repositories", visible=_unhidden(seen, "r"), cap=MAX_SIMILAR_HITS)
    if not _granted(seen):
        return unhidden
    return (f"SELECT * FROM ({unhidden}) p UNION SELECT * FROM"
            f" ({_SIMILAR.format(source=f'({GRANTED})', visible='true', cap=MAX_SIMILAR_HITS)}) g")


def _similar(cur, seen: Visibility, params: dict, after: list | None, limit: int):
    """When the text matches nothing: names with a word similar to the query (pg_trgm, where it is installed),
    ranked by similarity. They are capped at MAX_SIMILAR_HITS (counts and facets are estimates when the cap is
    reached), and all of them are read."""
    empty = {"kind": [], "namespace": [], "estimate": False}
    cur.execute("SELECT to_regprocedure('word_similarity(text, text)') IS NOT NULL AS present")
    if not cur.fetchone()["present"]:
        return [], empty, {"count": 0, "estimate": False}, False
    cur.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", (str(SIMILARITY_THRESHOLD),))
    cur.execute(_similar_sql(seen), params)
    found = cur.fetchall()
    capped = len(found) >= MAX_SIMILAR_HITS
    hits = sorted(found, key=lambda row: (-row["rank"], -row["id"]))[:MAX_SIMILAR_HITS]
    kind, namespace = params["kind"], params["namespace"]
    facets = {**_facets(hits, namespace, kind), "estimate": capped}
    kept = [row for row in hits if _kept(row, namespace, kind)]
    if after is not None:
        kept = [row for row in kept if (-row["rank"], -row["id"]) > (-after[1], -after[3])]
    page = [{key: row[key] for key in ("id", "exact", "rank", "updated_at")} for row in kept[:limit]]
    return _with_details(cur, page), facets, {"count": len(kept), "estimate": capped}, True
