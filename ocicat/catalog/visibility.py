"""Who may see which repository: the visibility rules, and the filter every catalog read applies.

A path is public or private by the longest rule that covers it, else by
``OCICAT_DEFAULT_VISIBILITY``; users see, besides, what their roles cover
(ocicat.accounts). Each repository keeps the visibility its rules give it
(``repositories.public``), so a read filters on one row's columns and never
joins the rules: :data:`VISIBLE`, with the parameters a :class:`Visibility`
gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from .. import accounts

# What the caller may see: everything (admins); anyone what is public (by its rules, or by
# OCICAT_DEFAULT_VISIBILITY without one); users what their roles cover, the path itself or anything
# below (path_covered, migrations/functions). The parameters are constants the planner folds: for an
# administrator the filter is gone, for a caller without roles it is coalesce(r.public, ...) alone,
# which the partial indexes of migration 0009 match.
VISIBLE = """
(%(everything)s OR coalesce(r.public, %(default_public)s)
 OR (%(has_roles)s AND path_covered(r.name, r.ancestors, %(view_names)s::text[], %(view_prefixes)s::text[])))
"""

# The repositories a caller's roles cover, found from the roles, an index probe each, for reads that must not touch
# what the caller may not see (search): the paths themselves (by name), and what lies below each prefix (a
# range of the namespace tree index, migration 0007: "/" spelled " ", the subtree is [path, path + "!")).
# OFFSET 0 keeps each lookup a subquery of its own: flattened into a join, the range's bounds are unknown to the
# planner, and for a caller with a few roles it read the whole table instead (75 ms at 80,000 repositories, against
# 0.5 ms; bench/api.py's reporter with 3 roles); and a condition on the rows (search's match) stays outside, where it
# cannot turn the lookups into a join with the whole catalog's search index.
GRANTED = """
SELECT r.* FROM unnest(coalesce(%(view_names)s::text[], %(view_prefixes)s::text[])) n(name)
 CROSS JOIN LATERAL (SELECT * FROM repositories r WHERE r.name = n.name OFFSET 0) r
UNION ALL
SELECT r.* FROM unnest(%(view_prefixes)s::text[]) p(path)
 CROSS JOIN LATERAL (SELECT * FROM repositories r
                      WHERE r.manifest_count > 0
                        AND replace(r.namespace, '/', ' ') COLLATE "C" >= replace(p.path, '/', ' ')
                        AND replace(r.namespace, '/', ' ') COLLATE "C" < replace(p.path, '/', ' ') || '!'
                     OFFSET 0) r
"""


@dataclass(frozen=True)
class Visibility:
    """What one caller may see: the parameters of :data:`VISIBLE`.

    ``everything``: an administrator's view. ``names`` are paths seen
    themselves, ``prefixes`` paths seen with everything strictly below them
    (a role covers both). Built once per caller and kept with it (api.auth
    caches callers), since the parameters of a user with 1,000 roles cost
    more to build than the query they filter.
    """

    default_public: bool
    everything: bool = False
    names: frozenset[str] = field(default_factory=frozenset)
    prefixes: frozenset[str] = field(default_factory=frozenset)

    def within(self, namespace: str | None) -> "Visibility":
        """This view for a read confined to ``namespace`` and below (None: the whole catalog): everything when a
        role covers all of it, only what is public when none of the caller's roles reaches into it, else the
        roles that do.

        So a page costs what the caller may see there: the plan runs from the
        public repositories' partial indexes when no role applies, and the
        number of repositories hidden from the caller cannot be timed.
        """
        namespace = (namespace or "").strip("/")
        if self.everything or not (self.names or self.prefixes):
            return self
        if any(p == "" or namespace == p or namespace.startswith(p + "/") for p in self.prefixes):
            return replace(self, everything=True, names=frozenset(), prefixes=frozenset())
        if not namespace:
            return self
        inside = namespace + "/"
        return replace(self, names=frozenset(n for n in self.names if n.startswith(inside)),
                       prefixes=frozenset(p for p in self.prefixes if p.startswith(inside)))

    @cached_property
    def params(self) -> dict:
        # names that are also the prefixes (a role's paths) are sent once, as NULL names (path_covered)
        names = None if self.names == self.prefixes else array_literal(sorted(self.names))
        return {"everything": self.everything, "default_public": self.default_public,
                "has_roles": bool(self.names or self.prefixes), "view_names": names,
                "view_prefixes": array_literal(sorted(self.prefixes))}

    @cached_property
    def name_ranges(self) -> tuple[tuple[str, str], ...]:
        """The repository names the caller's roles cover, as ranges [start, stop) of names in byte order, disjoint and
        sorted: a path itself is [path, path + "\\x01") (no name holds a control character), everything below a
        prefix [prefix + "/", prefix + "0") ("0" follows "/"). A path below another prefix is in that prefix's range
        and left out; any two ranges left are then disjoint, so in the order of their starts they are in the order
        of their names, which is what lets a list by name read them in turn (ocicat.catalog.reads).
        """
        def inside_a_prefix(path: str) -> bool:
            parts = path.split("/")
            return any("/".join(parts[:i]) in self.prefixes for i in range(1, len(parts)))

        ranges = [(n, n + "\x01") for n in self.names if not inside_a_prefix(n)]
        ranges += [(p + "/", p + "0") for p in self.prefixes if not inside_a_prefix(p)]
        return tuple(sorted(ranges))


def array_literal(values) -> str:
    """A PostgreSQL array literal ('{"a","b"}') of ``values`` in their order, sent as one string.

    psycopg2 sends a list as ARRAY['a', 'b', ...]: for a user with 1,000 grants
    that is 1,000 constants to parse and plan; one literal cast to text[] is
    one constant.
    """
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


# Rule changes and repository creation take this lock (exclusive, shared), so a repository created
# while a rule changes reads the rules after the change has committed.
_RULES_LOCK = "hashtextextended('ocicat visibility', 0)"
# Repositories under a path: the path itself and those that have it as an ancestor (GIN index).
_UNDER = "(r.name = %(path)s OR r.ancestors @> ARRAY[%(path)s]::text[])"


def wait_for_rule_changes(cur) -> None:
    """Before reading the rules for a new repository: wait for a rule change in flight."""
    cur.execute(f"SELECT pg_advisory_xact_lock_shared({_RULES_LOCK})")


def set_rule(cur, path: str, public: bool | None) -> int:
    """Make ``path`` and everything below it public or private (None: drop the rule); returns repositories affected.

    The rule and the repositories under it change in one transaction.
    """
    path = accounts.normalize_path(path)
    cur.execute(f"SELECT pg_advisory_xact_lock({_RULES_LOCK})")
    if public is None:
        cur.execute("DELETE FROM visibility_rules WHERE path = %s RETURNING 1", (path,))
        if cur.fetchone() is None:
            raise accounts.AccountError(f"no visibility rule on {accounts.shown_path(path)!r}")
    else:
        cur.execute(
            "INSERT INTO visibility_rules (path, public) VALUES (%s, %s)"
            " ON CONFLICT (path) DO UPDATE SET public = excluded.public, created_at = now()",
            (path, public),
        )
    cur.execute(f"UPDATE repositories r SET public = path_public(r.name) WHERE {_UNDER}", {"path": path})
    return cur.rowcount


def list_rules(cur) -> list[dict]:
    cur.execute("SELECT path, public, created_at FROM visibility_rules ORDER BY path")
    return cur.fetchall()


def who_can_see(cur, path: str, default_public: bool) -> dict:
    """Who may view ``path``: whether it is public (and by which rule), admins, and roles that cover it."""
    path = accounts.normalize_path(path)
    cur.execute(
        "SELECT v.path, v.public FROM visibility_rules v WHERE v.path = %(path)s OR v.path = ANY (path_ancestors(%(path)s))"
        " ORDER BY length(v.path) DESC LIMIT 1",
        {"path": path},
    )
    rule = cur.fetchone()
    admins, grants = accounts.viewers(cur, path)
    return {
        "path": path,
        "public": rule["public"] if rule else default_public,
        "rule": rule["path"] if rule else None,
        "admins": admins,
        "grants": grants,
    }
