"""The logic of sign-in: the administrator's rules, GitLab's claims as the registry's roles, the sealer, and which
GitLab pages the user's token may be sent to (against a loopback server)."""

from __future__ import annotations

import json

import pytest

from harness.oidc import JsonServer
from ocicat import role_rules
from ocicat.config import Config, ConfigError
from ocicat.sign_in import (
    GITLAB_ROLE_CLAIMS,
    MAX_CLAIM_VALUES,
    IdentityProvider,
    ProviderError,
    Roles,
    Sealer,
    apply_rules,
    gitlab_roles,
)

OWNER, MAINTAINER, DEVELOPER = GITLAB_ROLE_CLAIMS


def _roles(claims: dict, rules: list[dict]) -> Roles:
    roles = Roles.none()
    apply_rules(roles, claims, role_rules.parse(json.dumps(rules)))
    return roles


def test_rules_fill_paths_from_the_value_and_named_groups_and_keep_the_highest_role():
    rules = [{"match": "team-(?P<team>[a-z]+)-(dev|ops)", "path": "teams/{team}", "role": "developer"},
             {"match": "team-.*", "path": "teams", "role": "reporter"},
             {"match": "everyone", "path": "/", "role": "guest"},
             {"claim": "roles", "match": "catalog-admin", "role": "admin"},
             {"match": "Platform/Charts", "role": "maintainer"}]
    roles = _roles({"groups": ["team-web-dev", "team-web-ops", "team-db-ops", "everyone", "Platform/Charts", 7],
                    "roles": "catalog-admin"}, rules)
    assert roles.paths == {"teams/web": "developer", "teams/db": "developer", "teams": "reporter", "": "guest",
                           "platform/charts": "maintainer"}  # lowercased, as the registry names paths
    assert roles.admin is True
    assert _roles({"groups": ["team-web-devx", "xeveryone"]}, rules).paths == {"teams": "reporter"}  # full matches only


def test_a_claim_value_never_names_the_whole_registry_or_a_path_that_is_no_path():
    rules = [{"match": ".*", "role": "owner"}]  # path {value}
    assert _roles({"groups": ["/", "//", "", "a/../b", "bad path", "a//b", "ok/Fine"]}, rules).paths == {"ok/fine": "owner"}


def test_a_named_group_that_matched_nothing_is_no_match_not_the_parent_path():
    rules = [{"match": "team-(?P<team>[a-z]*)(?P<env>-prod)?", "path": "teams/{team}", "role": "owner"},
             {"match": "ops(-(?P<site>[a-z]+))?", "path": "ops/{site}/charts", "role": "developer"}]
    roles = _roles({"groups": ["team-", "team-web", "ops", "ops-fra"]}, rules)
    assert roles.paths == {"teams/web": "owner", "ops/fra/charts": "developer"}


def test_gitlab_claims_give_developer_and_up_and_reporter_from_the_api_or_the_fallback_rule():
    claims = {OWNER: ["top"], MAINTAINER: ["top/sub"], DEVELOPER: ["dev-group"], "groups": ["top", "guest-group"]}
    roles = Roles.none()
    gitlab_roles(roles, claims, readable={"top", "reporter-group", "project/in/group"})
    assert roles.paths == {"top": "owner", "top/sub": "maintainer", "dev-group": "developer",
                           "reporter-group": "reporter", "project/in/group": "reporter"}
    fallback = Roles.none()
    gitlab_roles(fallback, claims, readable=None)  # member of the group means Reporter (Guests too)
    assert fallback.paths == {"top": "owner", "top/sub": "maintainer", "dev-group": "developer",
                              "guest-group": "reporter"}
    absent = Roles.none()
    gitlab_roles(absent, {"groups": "not-a-list-but-one"}, readable=set())  # role claims absent: GitLab omits them
    assert absent.paths == {}


def test_a_huge_claim_is_cut_not_trusted_whole():
    roles = _roles({"groups": [f"g{n}" for n in range(MAX_CLAIM_VALUES + 5)]}, [{"match": "g.*", "role": "reporter"}])
    assert len(roles.paths) == MAX_CLAIM_VALUES


@pytest.mark.parametrize("rules, message", [
    ("not json", "JSON list"),
    ('{"match": "x"}', "JSON list"),
    ('[{"role": "reporter"}]', "rule 1"),
    ('[{"match": "x", "role": "superuser"}]', "role must be one of"),
    ('[{"match": "(", "role": "reporter"}]', "not a regular expression"),
    ('[{"match": "x", "role": "reporter", "extra": 1}]', "rule 1"),
    ('[{"match": "x", "role": "reporter", "path": ""}]', "non-empty"),
    ('[{"match": "x", "role": "admin", "path": "team"}]', "admin rule is for the whole registry"),
])
def test_bad_rules_stop_the_start_with_the_rule_named(rules, message):
    env = {"OCICAT_OIDC_ISSUER": "https://idp.example", "OCICAT_OIDC_CLIENT_ID": "c", "OCICAT_OIDC_CLIENT_SECRET": "s",
           "OCICAT_SECRET_KEY": "k", "OCICAT_OIDC_ROLE_RULES": rules}
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_sign_in_settings_are_checked_together():
    base = {"OCICAT_OIDC_ISSUER": "https://gitlab.example/", "OCICAT_OIDC_CLIENT_ID": "c",
            "OCICAT_OIDC_CLIENT_SECRET": "s", "OCICAT_SECRET_KEY": "k"}
    oidc = Config.from_env({**base, "OCICAT_OIDC_GITLAB": "true"}).oidc
    assert (oidc.issuer, oidc.name, oidc.gitlab_api_url) == ("https://gitlab.example", "GitLab", "https://gitlab.example")
    assert oidc.scopes == "openid profile email read_api"  # the Reporter question needs GitLab's API
    assert Config.from_env({**base, "OCICAT_OIDC_GITLAB": "true", "OCICAT_OIDC_GITLAB_REPORTERS": "groups"}
                           ).oidc.scopes == "openid profile email"
    assert Config.from_env(base).oidc.name == "gitlab.example"
    for missing, message in (("OCICAT_SECRET_KEY", "OCICAT_SECRET_KEY"), ("OCICAT_OIDC_CLIENT_ID", "CLIENT_ID")):
        with pytest.raises(ConfigError, match=message):
            Config.from_env({k: v for k, v in base.items() if k != missing})
    with pytest.raises(ConfigError, match="OCICAT_OIDC_ISSUER is not"):
        Config.from_env({"OCICAT_OIDC_CLIENT_ID": "c"})
    with pytest.raises(ConfigError, match="must include openid"):
        Config.from_env({**base, "OCICAT_OIDC_SCOPES": "profile"})
    with pytest.raises(ConfigError, match="http"):
        Config.from_env({**base, "OCICAT_OIDC_ISSUER": "gitlab.example"})
    with pytest.raises(ConfigError, match="OCICAT_OIDC_STALE_SECONDS must be at least 600"):
        Config.from_env({**base, "OCICAT_OIDC_REFRESH_SECONDS": "600", "OCICAT_OIDC_STALE_SECONDS": "300"})
    assert Config.from_env({}).oidc is None


def test_the_sealer_opens_only_what_its_own_key_sealed():
    sealed = Sealer("one key").seal("refresh-token")
    assert b"refresh-token" not in sealed
    assert Sealer("one key").open(sealed) == "refresh-token"
    assert Sealer("another key").open(sealed) is None
    assert Sealer("one key").seal(None) is None and Sealer("one key").open(None) is None


def test_gitlab_pages_are_read_only_from_the_configured_gitlab():
    """The user's token goes with every page: a ``Link: next`` to another site is not followed."""
    elsewhere = JsonServer(lambda path, authorization: (200, [{"full_path": "elsewhere"}], {}))
    gitlab = JsonServer(lambda path, authorization: (200, [{"full_path": "team"}], {
        "Link": f'<http://localhost:{elsewhere.port}/api/v4/groups?page=2>; rel="next"'}))
    try:
        config = Config.from_env({"OCICAT_OIDC_ISSUER": "https://gitlab.example", "OCICAT_OIDC_CLIENT_ID": "c",
                                  "OCICAT_OIDC_CLIENT_SECRET": "s", "OCICAT_SECRET_KEY": "k", "OCICAT_OIDC_GITLAB": "1",
                                  "OCICAT_OIDC_GITLAB_API_URL": gitlab.url})
        with pytest.raises(ProviderError, match="the next page is on another site"):
            IdentityProvider(config.oidc, "k")._gitlab_readable("the-users-token")
        assert len(gitlab.calls) == 1 and elsewhere.calls == []
    finally:
        gitlab.close()
        elsewhere.close()
