"""The visibility filter's parameters: one array literal per list, NULL names when they equal the prefixes; and the
roles as ranges of names."""

from __future__ import annotations

from ocicat.catalog.visibility import Visibility


def test_a_callers_roles_are_sent_as_one_literal_each():
    seen = Visibility(default_public=False, names=frozenset({"b/x", 'we"ird\\'}), prefixes=frozenset({"a"}))
    assert seen.params == {"everything": False, "default_public": False, "has_roles": True,
                           "view_names": '{"b/x","we\\"ird\\\\"}', "view_prefixes": '{"a"}'}


def test_roles_on_paths_send_their_list_once_and_callers_without_roles_none():
    paths = frozenset({"team", "other/app"})
    assert Visibility(True, names=paths, prefixes=paths).params["view_names"] is None
    anonymous = Visibility(default_public=True).params
    assert anonymous == {"everything": False, "default_public": True, "has_roles": False, "view_names": None,
                         "view_prefixes": "{}"}
    assert Visibility(False, everything=True).params["everything"] is True


def test_a_read_confined_to_a_namespace_keeps_only_the_roles_that_reach_into_it():
    roles = frozenset({"team", "other/app", "zz/one"})
    seen = Visibility(False, names=roles, prefixes=roles)
    assert seen.within("team/backend") == Visibility(False, everything=True)  # a role covers it all
    assert seen.within("team") == Visibility(False, everything=True)
    assert seen.within("zz-private") == Visibility(False)  # no role reaches in: what is public only
    assert seen.within("zz") == Visibility(False, names=frozenset({"zz/one"}), prefixes=frozenset({"zz/one"}))
    assert seen.within(None) is seen and seen.within("") is seen
    assert Visibility(False, names=frozenset({""}), prefixes=frozenset({""})).within("any").everything  # the root
    registry_token = Visibility(True, names=frozenset({"a/b"}))  # the repository a/b itself, nothing below it
    assert registry_token.within("a/b") == Visibility(True) and registry_token.within("a").names == {"a/b"}


def test_roles_are_disjoint_ranges_of_names_in_byte_order():
    seen = Visibility(False, names=frozenset({"a", "a/b", "a-x", "c/d/e", "z"}),
                      prefixes=frozenset({"a", "a/b/c", "c/d", "a.y"}))
    assert seen.name_ranges == (("a", "a\x01"), ("a-x", "a-x\x01"), ("a.y/", "a.y0"), ("a/", "a0"),
                                ("c/d/", "c/d0"), ("z", "z\x01"))
    for (_, stop), (start, _) in zip(seen.name_ranges, seen.name_ranges[1:]):
        assert stop <= start
    assert Visibility(True).name_ranges == () and Visibility(False, everything=True).name_ranges == ()
