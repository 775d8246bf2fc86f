"""ocicat.compare: the pure logic of comparing two chart versions, and its bounds on hostile input."""

from __future__ import annotations

import json

from ocicat import compare


def _snapshot(version="1.0.0", **fields):
    return {"version": version, "digest": f"sha256:{version}", "files": {}, **fields}


def _compare(old, new, texts=None):
    return compare.compare(old, new, lambda digests: {d: {"content": (texts or {})[d]} for d in digests})


def _values_diff(old: str, new: str, notes: list[str]) -> dict:
    return compare.values_diff(compare.parsed_values(old), compare.parsed_values(new), notes)


def test_paths_are_written_as_helm_set_takes_them():
    assert compare.path_text(("image", "tag")) == "image.tag"
    assert compare.path_text(("podAnnotations", "prometheus.io/scrape")) == "podAnnotations.prometheus\\.io/scrape"
    assert compare.path_text(("args", 0, "name")) == "args[0].name"


def test_comments_above_a_key_and_after_it_explain_it():
    parsed = compare.parsed_values(
        "# -- how many pods\n# (at least one)\nreplicas: 1  # scaled by the HPA otherwise\n\n# unrelated\n\nimage: x\n"
        "annotations:\n  # scrape it\n  prometheus.io/scrape: 'true'\n")
    assert parsed["comments"] == {"replicas": "how many pods\n(at least one)\nscaled by the HPA otherwise",
                                  "annotations.prometheus\\.io/scrape": "scrape it"}
    assert compare.parsed_values("[1, 2]\n") == {"error": "values.yaml is not a YAML map"}


def test_values_keys_removed_added_renamed_and_changed_with_lists_as_one_value():
    notes = []
    diff = _values_diff(
        "a: 1\n# the class\nclass: nginx\nempty: ''\nlist: [1, 2]\nkeep: {x: 1}\n",
        "a: 2\n# the class\nclassName: nginx\nother: ''\nlist: [1, 2, 3]\nkeep: {x: 1, y: 2}\n", notes)
    assert diff["renamed"] == [{"from": "class", "to": "className", "value": "nginx", "comment": "the class"}]
    # an empty, uncommented key gone and another come is no rename
    assert [r["path"] for r in diff["removed"]] == ["empty"]
    assert [a["path"] for a in diff["added"]] == ["keep.y", "other"]
    assert {c["path"]: (c["from"], c["to"]) for c in diff["changed"]} == {"a": (1, 2), "list": ((1, 2), (1, 2, 3))}
    assert notes == []


def test_a_rename_needs_one_candidate_only():
    notes = []
    diff = _values_diff("old: nginx\n", "new1: nginx\nnew2: nginx\n", notes)
    assert diff["renamed"] == [] and [r["path"] for r in diff["removed"]] == ["old"]


def test_schema_refs_required_types_and_enums():
    old = {"type": "object", "properties": {"port": {"type": "integer"}, "mode": {"enum": ["a", "b"]},
                                            "size": {"type": "integer"}, "gone": {"type": "string"}}}
    new = {"type": "object", "required": ["auth"],
           "properties": {"port": {"type": "string"}, "mode": {"enum": ["a"]}, "size": {"type": "number"},
                          "auth": {"$ref": "#/$defs/auth"}, "remote": {"$ref": "https://example.test/schema.json"}},
           "$defs": {"auth": {"type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"]}}}
    notes = []
    diff = compare.schema_diff(old, new, notes)
    assert diff["required"] == [{"path": "auth", "new": True}, {"path": "auth.user", "new": True}]
    assert {t["path"]: t["narrowed"] for t in diff["type_changed"]} == {"port": True, "size": False}
    assert diff["enum_changed"] == [{"path": "mode", "from": "[\"a\", \"b\"]", "to": "[\"a\"]", "removed": ["b"]}]
    assert [r["path"] for r in diff["removed"]] == ["gone"]
    assert diff["invalid"] is None
    assert compare.schema_diff(old, {"type": "object", "properties": {"x": {"type": 5}}}, [])["invalid"]


def test_dependencies_and_images():
    old = _snapshot(dependencies=[{"name": "redis", "version": "~17.1.0"}, {"name": "pg", "version": "12.x.x"}],
                    chart_lock={"dependencies": [{"name": "redis", "version": "17.1.4"}]},
                    artifacthub={"images": [{"name": "web", "image": "localhost:5000/shop/web:1.0@sha256:aa"}]})
    new = _snapshot("2.0.0",
                    dependencies=[{"name": "redis", "version": "^18.0.0"}, {"name": "pg", "version": "12.2.0"}],
                    artifacthub={"images": [{"name": "web", "image": "localhost:5000/shop/web:1.1"}]})
    deps = {d["name"]: (d["from"], d["to"], d["major"]) for d in compare.dependencies_diff(old, new)}
    assert deps == {"redis": ("17.1.4", "^18.0.0", True), "pg": ("12.x.x", "12.2.0", False)}
    assert compare.image_reference("localhost:5000/shop/web:1.0@sha256:aa") == ("localhost:5000/shop/web", "1.0",
                                                                                "sha256:aa")
    assert compare.image_reference("localhost:5000/web") == ("localhost:5000/web", None, None)
    assert [(i["repository"], i["status"]) for i in compare.images_diff(old, new)] == [
        ("localhost:5000/shop/web", "changed")]


def test_the_report_is_in_category_order_and_counts_breaking_candidates():
    old = _snapshot(values_yaml="a: 1\nb: 2\n", kube_version=">=1.20", files={"crds/x.yaml": {"digest": "1"}})
    new = _snapshot("2.0.0", values_yaml="a: 2\n", kube_version=">=1.25", files={"crds/x.yaml": {"digest": "2"}})
    report = _compare(old, new, {"1": "spec: {a: 1}\n", "2": "spec: {a: 2}\n"})["report"]
    assert [(i["category"], i["path"], i["breaking"]) for i in report["items"]] == [
        ("value-removed", "b", True), ("default-changed", "a", False), ("crd-changed", "crds/x.yaml", True),
        ("kube-version", "kubeVersion", True)]
    assert report["breaking"] == 3 and report["changes"] == 4
    assert report["items"][2]["fields"] == ["spec.a"]


def test_versions_indexed_before_contents_were_kept_say_so():
    result = _compare(_snapshot(files=None), _snapshot("2.0.0"))
    assert result["templates"] == [] and "resync --reindex" in result["notes"][0]


# -- hostile input: bounded, said, never an exception --------------------------------------------------------


def test_a_hundred_thousand_keys_are_refused_at_parse_with_a_note():
    values = "".join(f"k{i}: {i}\n" for i in range(100_000))
    result = _compare(_snapshot(values_yaml=values), _snapshot("2.0.0", values_yaml=values.replace(": ", ": x")))
    assert "values not compared" in result["notes"][0] and "100000" in result["notes"][0]
    assert result["values"]["changed"] == []


def test_forty_thousand_changed_keys_are_cut_at_the_cap():
    old = "".join(f"k{i}: {i}\n" for i in range(40_000))
    result = _compare(_snapshot(values_yaml=old), _snapshot("2.0.0", values_yaml=old.replace(": ", ": 1")))
    assert len(result["values"]["changed"]) == compare.MAX_CHANGES
    assert f"only the first {compare.MAX_CHANGES} changes" in result["notes"][0]
    assert len(result["report"]["items"]) == compare.MAX_REPORT_ITEMS
    assert result["report"]["more"] == compare.MAX_CHANGES - compare.MAX_REPORT_ITEMS


def test_deep_nesting_and_alias_bombs_are_refused_with_a_note():
    deep = "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 150)) + "  " * 150 + "v: 1\n"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
    for values in (deep, bomb):
        result = _compare(_snapshot(values_yaml="a: 1\n"), _snapshot("2.0.0", values_yaml=values))
        assert result["notes"] and "values not compared" in result["notes"][0]


def test_huge_strings_are_shown_cut_in_the_report():
    result = _compare(_snapshot(values_yaml="blob: " + "a" * 4_000_000 + "\n"),
                      _snapshot("2.0.0", values_yaml="blob: " + "b" * 4_000_000 + "\n"))
    item = result["report"]["items"][0]
    assert item["path"] == "blob" and len(item["from"]) == compare.MAX_SHOWN and item["from"].endswith("…")


def test_text_diffs_set_aside_what_is_the_same_and_stop_where_too_much_changed():
    long_old = "".join(f"line {i}\n" for i in range(50_000))
    long_new = long_old.replace("line 30000\n", "line 30000, changed\n")
    other = "".join(f"other {i}\n" for i in range(3000))
    other_old = "".join(f"was {i}\n" for i in range(3000))
    files = {f"templates/t{i}.yaml": {"digest": f"o{i}"} for i in range(3)}
    new_files = {f"templates/t{i}.yaml": {"digest": f"n{i}"} for i in range(3)}
    texts = {"o0": long_old, "n0": long_new, "o1": other_old, "n1": other, "o2": "a\nb\n", "n2": "a\nc\n"}
    result = _compare(_snapshot(files=files), _snapshot("2.0.0", files=new_files), texts)
    diffs = {t["path"]: t["diff"] for t in result["templates"]}
    # one changed line of 50,000: diffed, with the file's own line numbers
    assert diffs["templates/t0.yaml"].splitlines()[2:] == [
        "@@ -29998,7 +29998,7 @@", " line 29997", " line 29998", " line 29999", "-line 30000", "+line 30000, changed",
        " line 30001", " line 30002", " line 30003"]
    # 3,000 lines all different: 9 million cells, over the bound
    assert diffs["templates/t1.yaml"] is None and "templates/t1.yaml: too much changed" in result["notes"][0]
    assert diffs["templates/t2.yaml"] == "--- a/templates/t2.yaml\n+++ b/templates/t2.yaml\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"


def test_hostile_schemas_meet_the_bounds_and_raise_nothing():
    shared_enum = [{"v": i} for i in range(2000)]
    refs = {"type": "object", "properties": {f"p{i}": {"$ref": "#/$defs/e"} for i in range(2000)},
            "$defs": {"e": {"enum": shared_enum}}}
    refs_new = {**refs, "$defs": {"e": {"enum": shared_enum[1:]}}}
    looping = {"type": "object", "properties": {**{f"b{i}": True for i in range(20_000)},
                                                "x": {"$ref": "#"}, "y": {"$ref": "#"}}}
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "enum": [{"k": i} for i in range(4000)]}
    not_checked = "schema: not checked against its metaschema"
    cases = [
        (refs, refs_new, not_checked),  # 2,000 maps in the enum: too many pairs to check
        ({}, looping, f"schema: only the first {compare.MAX_SCHEMA_NODES} properties and items"),
        ({}, draft4, not_checked),
        ({}, {"$schema": 5, "properties": {"a": {"type": "string"}}}, None),
        ({}, {"$id": 5, "properties": {"a": {"$ref": "#"}}}, None),
        ({}, ["not", "a", "map"], None),
    ]
    for old, new, note in cases:
        notes = []
        diff = compare.schema_diff(old, new, notes)
        assert (note is None and notes == []) or any(n.startswith(note) for n in notes), (str(new)[:80], notes)
        assert len(json.dumps(diff)) < 2_000_000  # shared enums are quoted from their first values
    changed = compare.schema_diff(refs, refs_new, [])["enum_changed"]
    assert len(changed) == 2000 and changed[0]["removed"] == [{"v": 0}]
    assert compare.schema_diff({}, {"$schema": 5, "properties": {"a": {"type": "string"}}}, [])["added"][0]["path"] == "a"
