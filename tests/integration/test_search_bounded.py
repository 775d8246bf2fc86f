"""Reads bounded by the page against exhaustive answers, on a generated catalog of 10,000 repositories and
hypothesis-generated queries, callers and filters: search (ocicat.catalog.search) against exhaustive ranking, and the
list by name of a caller with roles, read from their roles' name ranges (ocicat.catalog.reads), against the list
filtered row by row.

The exhaustive ranking here is written from the search documents themselves (tsvector lexemes and weights), not from
the postings search reads, so a posting the trigger forgot or ranked wrong shows as a different page.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone

import psycopg2.extras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.processes import wait_until
from ocicat.catalog import search as catalog_search
from ocicat.catalog.reads import list_repositories, query_words
from ocicat.catalog.visibility import VISIBLE, Visibility
from ocicat.db import Database
from ocicat.migrate import MIGRATIONS_DIR as MIGRATIONS

# Words that share prefixes (so one- and two-letter queries and longer prefixes expand to several words), with some
# common and some rare.
VOCABULARY = ("server service serverless servlet serde se s3 redis redpanda red nginx ngrok postgres postgresql post "
              "kafka kube kubernetes kubectl api apis app apple sql web webhook website data database db a x quokka "
              "zebra zeta").split()
KINDS = ("helm-chart", "image", "signature")
ORGANIZATIONS = 20
TEAMS = 10
REPOSITORIES = 10_000
BOUND = 300  # the count bound for these tests: common words pass it, rare ones do not
# Names beside the generated ones that a range of names could get wrong: a repository named as an organization or a
# team, and neighbours whose names begin the same ('-' and '.' sort before '/', '0' after it).
EDGE_NAMES = ("org1", "org1/team2", "org1-x/team2/edge", "org1.y/edge", "org10/edge", "org1/team2-x/edge",
              "org1/team2.y/edge", "org1/team20/edge", "org2/team3/redis/deeper/still")
PAGE = 10


def _text(rng: random.Random, low: int, high: int) -> str:
    # common words are drawn more often than rare ones
    return " ".join(rng.choice(VOCABULARY[: rng.choice((8, 20, len(VOCABULARY)))]) for _ in range(rng.randint(low, high)))


@pytest.fixture(scope="module")
def catalog(make_database):
    """10,000 repositories in 200 team namespaces, with search documents weighted as the worker writes them (A name
    and title, B description, C keywords, D annotations and namespace), few distinct update times (so recency ties
    and the id decides), and every visibility."""
    database = Database(make_database(), maxconn=4)
    rng = random.Random(20261204)
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(REPOSITORIES):
        namespace = f"org{i % ORGANIZATIONS}/team{(i // ORGANIZATIONS) % TEAMS}"
        name = f"{namespace}/{rng.choice(VOCABULARY)}-{i}" if rng.random() < 0.8 else f"{namespace}/{rng.choice(VOCABULARY)}"
        rows.append((name, namespace, base + timedelta(hours=rng.randint(0, 50)), 1,
                     sorted(rng.sample(KINDS, rng.randint(1, 2))), rng.choice((None, True, False)),
                     name, _text(rng, 0, 2), _text(rng, 0, 12), _text(rng, 0, 3), _text(rng, 0, 2)))
    for name in EDGE_NAMES:
        rows.append((name, name.rpartition("/")[0], base, 1, ["image"], rng.choice((None, False)), name, "", "", "", ""))
    with database.transaction() as cur:
        psycopg2.extras.execute_values(cur, """
            INSERT INTO repositories (name, namespace, updated_at, manifest_count, kinds, public, search)
            SELECT v.name, v.namespace, v.updated_at, v.manifest_count, v.kinds, v.public,
                   setweight(to_tsvector('simple', v.name || ' ' || translate(v.name, '/_.', '   ')), 'A')
                || setweight(to_tsvector('simple', v.title), 'A') || setweight(to_tsvector('simple', v.description), 'B')
                || setweight(to_tsvector('simple', v.keywords), 'C')
                || setweight(to_tsvector('simple', v.annotations || ' ' || translate(v.namespace, '/_.', '   ')), 'D')
              FROM (VALUES %s) v(name, namespace, updated_at, manifest_count, kinds, public, n, title, description,
                                keywords, annotations)
            ON CONFLICT (name) DO NOTHING""", rows, template="(%s, %s, %s::timestamptz, %s, %s::text[], %s::boolean, "
                                                             "%s, %s, %s, %s, %s)")
        # later writes go through the trigger as the worker's refresh does: change some documents and recency
        cur.execute("UPDATE repositories SET search = search || setweight(to_tsvector('simple', 'quokka'), 'B'),"
                    " updated_at = updated_at + interval '1 hour' WHERE id % 97 = 0")
        cur.execute("UPDATE repositories SET public = NOT coalesce(public, false) WHERE id % 89 = 0")
        cur.execute("UPDATE repositories SET manifest_count = 0 WHERE id % 83 = 0")
    yield database
    database.close()


# The exhaustive ranking: every repository the caller may see that matches, each query word scored by the best
# weight of a lexeme it begins, a hit by its weakest word.
EXHAUSTIVE = f"""
SELECT r.id, (r.name = lower(%(q)s) OR split_part(r.name, '/', -1) = lower(%(q)s))::int AS exact, s.rank, r.namespace,
       r.kinds
  FROM repositories r
 CROSS JOIN LATERAL (
    SELECT min(best) AS rank FROM (
        SELECT coalesce(max(4 - (ascii(w::text) - ascii('A'))), 0) AS best
          FROM unnest(%(words)s::text[]) q(word)
          LEFT JOIN LATERAL (SELECT u.weights FROM unnest(r.search) u WHERE starts_with(u.lexeme, q.word)) l ON true
          LEFT JOIN LATERAL unnest(l.weights) w ON true
         GROUP BY q.word) words) s
 WHERE r.manifest_count > 0 AND {VISIBLE} AND s.rank > 0
 ORDER BY exact DESC, s.rank DESC, r.updated_at DESC, r.id DESC
"""


def _exhaustive(cur, seen: Visibility, q: str, namespace, kind) -> list[dict]:
    words, _ = query_words(cur, q)
    if not words:
        return []
    cur.execute(EXHAUSTIVE, {**seen.params, "q": q, "words": words})
    return [row for row in cur.fetchall()
            if (kind is None or kind in row["kinds"])
            and (namespace is None or row["namespace"] == namespace or row["namespace"].startswith(namespace + "/"))]


def _all(cur, seen: Visibility, q: str) -> list[dict]:
    return _exhaustive(cur, seen, q, None, None)


ADMIN = Visibility(default_public=False, everything=True)
CALLERS = {
    "administrator": ADMIN,
    "anonymous, private catalog": Visibility(default_public=False),
    "anonymous, public catalog": Visibility(default_public=True),
    "reporter on 3 teams": Visibility(default_public=False, names=frozenset({"org1/team2", "org3/team4", "org5"}),
                                      prefixes=frozenset({"org1/team2", "org3/team4", "org5"})),
    "reporter on nested paths": Visibility(default_public=False, names=frozenset({"org1", "org1/team2", "org11"}),
                                           prefixes=frozenset({"org1", "org1/team2", "org11"})),
    "reporter on one repository": Visibility(default_public=False, names=frozenset({"org2/team3/redis"}),
                                             prefixes=frozenset({"org2/team3/redis"})),
}

words = st.one_of(
    st.sampled_from(VOCABULARY).flatmap(lambda w: st.integers(1, len(w)).map(lambda n: w[:n])),  # a prefix
    st.text(alphabet="aeiorsnkqxz3", min_size=1, max_size=4),
)
queries = st.one_of(
    st.lists(words, min_size=1, max_size=3).map(" ".join),
    st.sampled_from(["redis", "org1/team2/redis", "Nginx", "server", "s", "se", "serv", "a x", "quokka", "kube api"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=queries, caller=st.sampled_from(sorted(CALLERS)), kind=st.sampled_from((None,) + KINDS),
       namespace=st.sampled_from((None, "org1", "org1/team2", "org5/team0", "org7")),
       small_subtree=st.sampled_from((0, catalog_search.SMALL_SUBTREE)))
def test_bounded_search_gives_the_pages_of_exhaustive_ranking(catalog, monkeypatch, q, caller, kind, namespace,
                                                              small_subtree):
    # small_subtree 0: every namespace filter walks its organization's postings, as large ones do
    monkeypatch.setattr(catalog_search, "COUNT_BOUND", BOUND)
    monkeypatch.setattr(catalog_search, "SMALL_SUBTREE", small_subtree)
    seen = CALLERS[caller]
    with catalog.transaction() as cur:
        expected = _exhaustive(cur, seen, q, namespace, kind)
        every = _all(cur, seen, q)
        first, facets, total, similar = catalog_search.search(cur, seen, q=q, namespace=namespace, kind=kind,
                                                              after=None, limit=PAGE)
        if similar:  # the text matched nothing the caller may see: names similar to it, never text hits
            assert every == []
            return
        assert [(h["id"], h["exact"]) for h in first] == [(h["id"], h["exact"]) for h in expected[:PAGE]]
        assert [h["rank"] for h in first] == [h["rank"] for h in expected[:PAGE]]
        if len(first) == PAGE:
            key, _ = catalog_search.KEY
            second, _, _, _ = catalog_search.search(cur, seen, q=q, namespace=namespace, kind=kind,
                                                    after=key(first[-1]), limit=PAGE)
            assert [h["id"] for h in second] == [h["id"] for h in expected[PAGE:2 * PAGE]]

    # Counts: exact up to the bound, the bound past it (never more than the true count), and marked.
    assert total == {"count": min(len(expected), BOUND), "estimate": len(expected) > BOUND}
    assert facets["estimate"] == (len(every) > BOUND)
    if not facets["estimate"]:
        in_namespace = [h for h in every if namespace is None or h["namespace"] == namespace
                        or h["namespace"].startswith(namespace + "/")]
        kinds = {}
        for h in in_namespace:
            for k in h["kinds"]:
                kinds[k] = kinds.get(k, 0) + 1
        assert {f["value"]: f["count"] for f in facets["kind"]} == kinds
        namespaces = {}
        for h in every:
            if kind is None or kind in h["kinds"]:
                namespaces[h["namespace"]] = namespaces.get(h["namespace"], 0) + 1
        expected_namespaces = sorted(namespaces.items(), key=lambda x: (-x[1], x[0]))[:catalog_search.NAMESPACE_FACET_SIZE]
        assert [(f["value"], f["count"]) for f in facets["namespace"]] == expected_namespaces


def _postings_differ(cur) -> int:
    """Rows by which search_postings differs from search_terms of every listed repository's document, with its
    recency, visibility and organization."""
    expected = """SELECT t.term, r.id, t.weight, r.updated_at, r.public, split_part(r.namespace, '/', 1)
                    FROM repositories r, search_terms(r.search) t WHERE r.manifest_count > 0"""
    found = "SELECT term, repository_id, weight, updated_at, public, organization FROM search_postings"
    cur.execute(f"SELECT count(*) AS wrong FROM (({expected} EXCEPT {found}) UNION ALL ({found} EXCEPT {expected})) x")
    return cur.fetchone()["wrong"]


def test_postings_follow_every_write(catalog):
    """The trigger keeps search_postings equal to search_terms of every listed repository's document."""
    with catalog.transaction() as cur:
        assert _postings_differ(cur) == 0
        cur.execute("SELECT count(*) AS n FROM search_postings")
        assert cur.fetchone()["n"] > REPOSITORIES


def test_migrations_0020_and_0024_fill_exactly_while_writers_write(make_database):
    """The repositories of a catalog from before migration 0019 get their postings from 0020's pass, and those
    postings their organization from 0024's (as an upgrade from before 0019 runs both), while writers change
    documents, recency, visibility and listing at random: after them, none is missing or stale. One writer holds a
    repository of the first batch when the pass starts, so the pass certainly meets a write in flight: it waits
    for it, and takes the written version."""
    url = make_database()
    database = Database(url, maxconn=4)
    rng = random.Random(7)
    with database.transaction() as cur:
        cur.execute("""INSERT INTO repositories (name, namespace, updated_at, manifest_count, public, search)
                       SELECT 'org' || i % 7 || '/team/r' || i, 'org' || i % 7 || '/team', now(), 1, NULL,
                              setweight(to_tsvector('simple', 'org r' || i || ' server service'), 'A')
                         FROM generate_series(1, 5000) i""")
        cur.execute("DELETE FROM search_postings")  # as before 0019
    held = psycopg2.connect(url)
    with held.cursor() as cur:  # a write in flight on the first batch's repository 1
        cur.execute("UPDATE repositories SET search = to_tsvector('simple', 'quokka'), updated_at = now() WHERE id = 1")
    fill = psycopg2.connect(url)
    fill.autocommit = True
    filled = threading.Event()

    def run_fill():
        with fill.cursor() as cur:
            cur.execute((MIGRATIONS / "0020.search_postings_fill.sql").read_text())
            cur.execute((MIGRATIONS / "0024.search_postings_organization_fill.sql").read_text())
        filled.set()

    thread = threading.Thread(target=run_fill)
    thread.start()
    with database.transaction() as cur:
        wait_until(lambda: cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                       (fill.get_backend_pid(),)) or cur.fetchone()["wait_event_type"] == "Lock",
                   what="the pass to wait for the write in flight")
    held.commit()
    held.close()
    while not filled.is_set():
        with database.transaction() as cur:
            cur.execute("""UPDATE repositories SET search = to_tsvector('simple', %s), updated_at = now(),
                                  public = %s, manifest_count = %s WHERE id = %s""",
                        (rng.choice(VOCABULARY), rng.choice((None, True, False)), rng.choice((0, 1, 1)),
                         rng.randint(2, 5000)))  # not 1: its write is checked below
    thread.join()
    fill.close()
    with database.transaction() as cur:
        assert _postings_differ(cur) == 0
        cur.execute("SELECT term FROM search_postings WHERE repository_id = 1 AND length(term) > 2")
        assert [row["term"] for row in cur.fetchall()] == ["quokka"]
    database.close()


def test_namespace_filter_leaves_out_siblings_that_share_its_letters(catalog):
    """A search in org1 finds what is in org1 and below it, and nothing in org10 to org19."""
    with catalog.transaction() as cur:
        hits, _, _, _ = catalog_search.search(cur, ADMIN, q="redis", namespace="org1", kind=None, after=None, limit=50)
    assert hits and all(h["namespace"].startswith("org1/") for h in hits)


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_similar_names_are_every_one_the_caller_sees_and_no_other(catalog, caller):
    """A query whose text matches nothing gives the names with a similar word: all of those the caller sees (public,
    or covered by a role, nested roles counted once), none they may not."""
    seen, typo = CALLERS[caller], "quokak"
    with catalog.transaction() as cur:
        hits, _, total, similar = catalog_search.search(cur, seen, q=typo, namespace=None, kind=None, after=None,
                                                        limit=catalog_search.MAX_SIMILAR_HITS)
        cur.execute(f"SELECT r.id FROM repositories r WHERE r.manifest_count > 0 AND {VISIBLE}"
                    " AND word_similarity(%(q)s, r.name) >= %(threshold)s",
                    {**seen.params, "q": typo, "threshold": catalog_search.SIMILARITY_THRESHOLD})
        expected = sorted(row["id"] for row in cur.fetchall())
    assert similar and expected and total == {"count": len(expected), "estimate": False}
    assert sorted(hit["id"] for hit in hits) == expected


paths = st.sampled_from(("org1", "org1/team2", "org1/team2/redis", "org1-x", "org1-x/team2", "org1.y", "org10",
                         "org3/team4", "org5", "org2/team3/redis", "org2/team3", "org19/team9", "org7/team0"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.frozensets(paths, max_size=5), prefixes=st.frozensets(paths, max_size=5),
       default_public=st.booleans(), kind=st.sampled_from((None,) + KINDS), page=st.sampled_from((1, 7, 50)),
       namespace=st.sampled_from((None, "org1", "org1/team2", "org2", "org7")), at=st.floats(0, 1))
def test_list_by_name_of_a_caller_with_roles_is_the_list_filtered_row_by_row(catalog, names, prefixes,
                                                                              default_public, kind, page, namespace,
                                                                              at):
    """The first pages of the list by name, followed by their cursors, and the page after any listed name, are
    those of every repository the caller may see (VISIBLE, row by row) in the filters, in byte order; names and
    prefixes as a registry token's scopes give them, overlapping and nested. The first page by update too."""
    seen = Visibility(default_public=default_public, names=names, prefixes=prefixes)
    with catalog.transaction() as cur:
        cur.execute(f"SELECT r.name, r.namespace, r.kinds, r.updated_at FROM repositories r"
                    f" WHERE r.manifest_count > 0 AND {VISIBLE}", seen.params)
        rows = [row for row in cur.fetchall()
                if (kind is None or kind in row["kinds"])
                and (namespace is None or row["namespace"] == namespace
                     or row["namespace"].startswith(namespace + "/"))]
        expected = sorted(row["name"] for row in rows)
        by_update = [row["name"]
                     for row in sorted(rows, key=lambda row: (row["updated_at"], row["name"]), reverse=True)]
        assert [row["name"] for row in list_repositories(cur, seen, namespace=namespace, kind=kind, q=None,
                                                         sort="-updated", after=None, limit=page)] == by_update[:page]

        def page_after(after):
            return [row["name"] for row in list_repositories(cur, seen, namespace=namespace, kind=kind, q=None,
                                                             sort="name", after=after, limit=page)]

        listed, after = [], None
        for _ in range(3):
            listed += page_after(after)
            after = [listed[-1]] if listed else None
        assert listed == expected[:3 * page]
        if expected:
            k = int(at * (len(expected) - 1))
            assert page_after([expected[k]]) == expected[k + 1:k + 1 + page]


def test_a_page_by_name_after_a_cursor_inside_a_role_below_another(make_database):
    """A role on a path below another role's path adds no range of its own (its repositories are in the other's):
    the page after a cursor inside both still holds the rest of the outer role's (a/x/y), then the next role's. The
    roles as a registry token's scopes give them (b without the repository b itself): kept, the inner ranges would
    end before the outer one's, and the search for the cursor's first range would skip the outer one."""
    database = Database(make_database(), maxconn=1)
    with database.transaction() as cur:
        psycopg2.extras.execute_values(cur, "INSERT INTO repositories (name, namespace, manifest_count, public,"
                                            " updated_at) SELECT v.*, now() FROM (VALUES %s) v",
                                       [("a/x", "a", 1, False), ("a/x/deeper/r", "a/x/deeper", 1, False),
                                        ("a/x/y", "a/x", 1, False), ("b/y/r", "b/y", 1, False), ("c/z", "c", 1, True)])
        seen = Visibility(default_public=False, names=frozenset({"a/x", "a/x/deeper"}),
                          prefixes=frozenset({"a/x", "a/x/deeper", "b"}))

        def page(after):
            return [row["name"] for row in list_repositories(cur, seen, namespace=None, kind=None, q=None, sort="name",
                                                             after=after, limit=3)]

        assert page(None) == ["a/x", "a/x/deeper/r", "a/x/y"]
        assert page(["a/x/deeper/r"]) == ["a/x/y", "b/y/r", "c/z"]
    database.close()
