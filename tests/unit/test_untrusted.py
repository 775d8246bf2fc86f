"""Untrusted input made safe: text PostgreSQL can store, JSON objects only, YAML bounded before it is built."""

from __future__ import annotations

import pytest

from ocicat.untrusted import MAX_STORED_DEPTH, YAMLError, json_object, storable, yaml_document


def test_storable_replaces_what_postgresql_refuses():
    value = {"a\x00": ["b\ud800", float("nan"), float("inf"), 1.5, None, True]}
    stored = storable(value)
    assert stored == {"a\ufffd": [stored["a\ufffd"][0], "nan", "inf", 1.5, None, True]}
    text = stored["a\ufffd"][0]
    assert text.startswith("b\ufffd") and set(text[1:]) == {"\ufffd"} and text.encode("utf-8")  # no lone surrogate
    deep = current = []
    for _ in range(MAX_STORED_DEPTH + 10):
        current.append([])
        current = current[0]
    flattened = storable(deep)
    for _ in range(MAX_STORED_DEPTH):
        flattened = flattened[0]
    assert flattened == "<nested too deeply>"


@pytest.mark.parametrize("data, reason", [
    (b"{", "manifest is not JSON"), (b"[1]", "manifest is not a JSON object"), (b"[" * 100_000, "nested too deeply"),
    (b"\xff", "manifest is not JSON"),
])
def test_json_object_says_what_is_wrong(data, reason):
    with pytest.raises(ValueError, match=reason):
        json_object(data, "manifest")


def test_yaml_is_read_as_helm_reads_it():
    assert yaml_document("a: 2026-01-01\n1: one\ntrue: t\n---\nsecond: document\n", "values.yaml") == {
        "a": "2026-01-01", "1": "one", "true": "t"}  # timestamps stay text; keys are their JSON text; one document
    assert yaml_document("", "values.yaml") is None


@pytest.mark.parametrize("text, reason", [
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)), "alias bomb"),
    ("[" * 200 + "]" * 200, "nests deeper than"),
    ("a: &a [*a]\n", "recursive alias"),
    ("a: [\n", "not valid YAML"),
])
def test_yaml_that_would_blow_up_is_refused_before_it_is_built(text, reason):
    with pytest.raises(YAMLError, match=reason):
        yaml_document(text, "values.yaml")
