"""Untrusted input made safe to use: decoding what the registry serves, and making any text storable.

Every manifest, config blob, chart file and webhook body was written by
whoever could push to the registry or reach the webhook.
"""

from __future__ import annotations

import json
import math

import yaml

MAX_STORED_DEPTH = 64


def storable(value, depth: int = 0):
    """``value`` made safe for PostgreSQL text and jsonb, which reject NUL, lone
    surrogates and NaN/Infinity, and overflow the stack on deep nesting.

    Hostile input must never make a whole transaction fail: for the receiver
    that would be a 503 the registry retries forever, for the worker a dead
    letter for a manifest the registry accepted.
    """
    if isinstance(value, str):
        # A lone surrogate (possible through JSON and YAML escapes) becomes U+FFFD, like NUL.
        return value.replace("\x00", "\ufffd").encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (dict, list)) and depth >= MAX_STORED_DEPTH:
        return "<nested too deeply>"
    if isinstance(value, dict):
        return {storable(k, depth + 1): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v, depth + 1) for v in value]
    return value


def json_object(data: bytes, what: str) -> dict:
    """``data`` as a JSON object, or ValueError with a reason that names ``what``."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} is not a JSON object")
    return doc


MAX_YAML_NODES = 100_000  # counted with aliases expanded; a large Chart.lock has a few hundred
MAX_YAML_DEPTH = 100  # real chart metadata nests a handful of levels


class YAMLError(ValueError):
    """A YAML document refused: not YAML, too deep, or too big once its aliases are expanded."""


def yaml_document(text: str, what: str):
    """The first YAML document in ``text``, JSON-shaped (string keys, timestamps as strings), or None.

    The document's shape is checked before anything is built (see _check_shape).
    """
    return _load(text, what, None)


def yaml_document_and_key_lines(text: str, what: str) -> tuple[object, dict[tuple, int]]:
    """:func:`yaml_document`, and the line (from 0) of each mapping key outside sequences, by its path of keys:
    where the comments that explain a key are (ocicat.compare reads them; PyYAML keeps none, and ruamel.yaml, which
    does, took 320 ms where this takes 9 for a 70 KB values.yaml)."""
    lines: dict[tuple, int] = {}
    return _load(text, what, lines), lines


def _load(text: str, what: str, key_lines: dict | None):
    try:
        _check_shape(text, what)
        loader = _Loader(text)
        try:
            if not loader.check_node():
                return None
            node = loader.get_node()
            if key_lines is not None:
                _walk_keys(node, key_lines)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise YAMLError(f"{what} is not valid YAML: {_yaml_problem(exc)}") from None


def _walk_keys(root: yaml.Node, lines: dict[tuple, int]) -> None:
    """Each scalar key's line, by path; iterative, over a document _check_shape has bounded (aliases included)."""
    stack = [((), root)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, yaml.MappingNode):
            continue
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[path + (key.value,)] = key.start_mark.line
                stack.append((path + (key.value,), value))


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the same safe constructor, in C when available


class _Loader(_SafeLoader):
    """Safe loading into what Helm's YAML-to-JSON conversion gives: timestamps stay strings, keys are strings."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node, deep=False):
        # Keys become their JSON text here, not after loading: as Python keys,
        # 1, 1.0 and true are equal and would silently overwrite one another.
        self.flatten_mapping(node)  # merge keys (<<)
        mapping = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, type(None))):  # bool is an int
                raise yaml.constructor.ConstructorError(
                    None, None, f"found a mapping key JSON cannot represent ({type(key).__name__})", key_node.start_mark
                )
            mapping[key if isinstance(key, str) else json.dumps(key)] = self.construct_object(value_node, deep=deep)
        return mapping


def _check_shape(text: str, what: str) -> None:
    """Refuse a first document that nests too deeply or is too big once its aliases are expanded.

    safe_load is not enough for untrusted YAML. It builds an alias as a shared
    object, so a "billion laughs" document loads cheaply and only blows up when
    something walks it (json.dumps for JSONB, the API's serializer); an alias
    inside its own anchor even loads as a cycle. And the C loader composes
    recursively in C: a few hundred KB of "[[[[" crash the process. So the
    parser's events (produced iteratively) are walked first: each node's size
    with aliases expanded is summed bottom-up, the nesting depth is tracked,
    and both are bounded before anything is composed. Work stops as soon as a
    bound is crossed, so a hostile file costs at most about MAX_YAML_NODES events.
    """
    loader = _Loader(text)
    sizes: dict[str, int] = {}  # anchor -> expanded size of the node it names
    open_collections: list[list] = []  # [anchor, expanded size so far], outermost first
    try:
        while True:
            event = loader.get_event()
            if isinstance(event, (yaml.DocumentEndEvent, yaml.StreamEndEvent)):
                return
            if isinstance(event, yaml.CollectionStartEvent):
                open_collections.append([event.anchor, 1])
                if len(open_collections) > MAX_YAML_DEPTH:
                    raise YAMLError(f"{what} nests deeper than {MAX_YAML_DEPTH} levels")
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = open_collections.pop()
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            elif isinstance(event, yaml.AliasEvent):
                # An anchor whose node is still open is an alias inside itself: a cycle.
                anchor, size = None, sizes.get(event.anchor)
                if size is None:
                    raise YAMLError(f"{what} uses an undefined or recursive alias *{event.anchor}")
            else:  # stream and document starts
                continue
            if anchor is not None:
                sizes[anchor] = size
            if open_collections:
                open_collections[-1][1] += size
                size = open_collections[-1][1]
            if size > MAX_YAML_NODES:
                raise YAMLError(f"{what} expands to more than {MAX_YAML_NODES} YAML nodes (alias bomb?)")
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where it is."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


