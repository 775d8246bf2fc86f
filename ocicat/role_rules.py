"""The administrator's rules that turn an identity provider's claims into roles (OCICAT_OIDC_ROLE_RULES).

A rule names a claim (``groups`` unless said), a regular expression that must
match a value of the claim in full, a path (a template filled with the value
as ``{value}`` and with the expression's named groups; ``/`` is the whole
registry) and a role: one of the registry's, or ``admin``. For example::

    [{"match": "platform", "path": "/", "role": "reporter"},
     {"match": "team-(?P<team>[a-z0-9-]+)-dev", "path": "teams/{team}", "role": "developer"},
     {"claim": "roles", "match": "ocicat-admin", "role": "admin"}]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from string import Formatter

from .accounts import LEVELS

ADMIN = "admin"  # a rule's role that makes the user an administrator
RULE_ROLES = (*LEVELS, ADMIN)
MAX_RULES = 1000


@dataclass(frozen=True)
class RoleRule:
    claim: str
    match: re.Pattern
    path: str
    role: str

    @property
    def whole_registry(self) -> bool:
        return self.path == "/"

    def path_for(self, value: str) -> str | None:
        """The path this rule's template gives for one value of its claim, None when the value does not match."""
        found = self.match.fullmatch(value)
        if found is None:
            return None
        fields = {"value": value, **found.groupdict()}
        # A field that matched nothing would leave a hole in the path ("teams/{team}" as "teams/"), which names the
        # parent: no match, rather than a role on more than the rule's author meant.
        if not all(fields.get(name) for _, name, _, _ in Formatter().parse(self.path) if name is not None):
            return None
        try:
            return self.path.format(**fields)
        except (KeyError, IndexError, ValueError):
            return None


def parse(raw: str | None) -> tuple[RoleRule, ...]:
    """Rules from their JSON list; ValueError, in words an administrator can act on, for any mistake."""
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"must be a JSON list of rules: {exc}") from None
    if not isinstance(items, list) or len(items) > MAX_RULES:
        raise ValueError(f"must be a JSON list of at most {MAX_RULES} rules")
    rules = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or "match" not in item or set(item) - {"claim", "match", "path", "role"}:
            raise ValueError(f"rule {n}: a rule is an object with match, role, and optionally claim and path, "
                             f"got {item!r}")
        claim, pattern, role = item.get("claim", "groups"), item["match"], item.get("role")
        path = item.get("path", "/" if role == ADMIN else "{value}")
        if not all(isinstance(v, str) and v for v in (claim, pattern, path)):
            raise ValueError(f"rule {n}: claim, match and path must be non-empty strings")
        if role not in RULE_ROLES:
            raise ValueError(f"rule {n}: role must be one of {', '.join(RULE_ROLES)}, got {role!r}")
        if role == ADMIN and path != "/":  # an administrator is one everywhere: a path would read as a limit
            raise ValueError(f"rule {n}: an admin rule is for the whole registry: leave out path, or give /")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"rule {n}: match is not a regular expression: {exc}") from None
        rules.append(RoleRule(claim, compiled, path, role))
    return tuple(rules)
