"""The visibility filter's parameters: one array literal per list, NULL names when they equal the prefixes."""

from __future__ import annotations

from ocicat.catalog.visibility import Visibility


def test_a_callers_roles_are_sent_as_one_literal_each():
    seen = Visibility(default_public=False, names=frozenset({"b/x", 'we"ird\\'}), prefixes=frozenset({"a"}))
    assert seen.params == {"admin": False, "default_public": False, "has_roles": True,
                           "view_names": '{"b/x","we\\"ird\\\\"}', "view_prefixes": '{"a"}'}


def test_roles_on_paths_send_their_list_once_and_callers_without_roles_none():
    paths = frozenset({"team", "other/app"})
    assert Visibility(True, names=paths, prefixes=paths).params["view_names"] is None
    anonymous = Visibility(default_public=True).params
    assert anonymous == {"admin": False, "default_public": True, "has_roles": False, "view_names": None,
                         "view_prefixes": "{}"}
    assert Visibility(False, admin=True).params["admin"] is True
