"""Helm chart metadata from the config blob Helm pushes (Chart.yaml as JSON; helm/helm ``pkg/registry``).

The config blob is untrusted input: every field is type-checked, and a blob
that is not a chart becomes a recorded error on the manifest, not a crash.
"""

from __future__ import annotations

import json
import re

import semver

from ocicat.untrusted import json_object, yaml_document

MAX_TEXT = 64 * 1024  # no Chart.yaml string field is anywhere near this in practice
# The names `helm create` accepts (helm/helm pkg/chart/v2/util/create.go); Helm loads a chart only if its name has
# no path separator (pkg/chart/v2/metadata.go), after dropping characters that do not print.
HELM_CHART_NAME = re.compile(r"^[a-zA-Z0-9._-]+\Z")


class ChartError(ValueError):
    """The config blob is not valid chart metadata."""


# Chart.yaml key -> column, for the string fields.
_STRINGS = {
    "apiVersion": "api_version",
    "name": "name",
    "version": "version",
    "kubeVersion": "kube_version",
    "description": "description",
    "type": "type",
    "home": "home",
    "icon": "icon",
    "appVersion": "app_version",
    "condition": "condition",
    "tags": "tags",
}


def parse_chart_config(blob: bytes) -> dict:
    """Column values for ``helm_charts`` from a Helm config blob."""
    try:
        meta = json_object(blob, "chart config")
    except ValueError as exc:
        raise ChartError(str(exc)) from None

    chart = {}
    for key, column in _STRINGS.items():
        value = meta.get(key)
        if value is not None and not isinstance(value, (str, int, float)):
            raise ChartError(f"chart field {key} must be a string")
        chart[column] = None if value is None else str(value)[:MAX_TEXT]
    for key in ("name", "version"):
        if not chart[_STRINGS[key]]:
            raise ChartError(f"chart config has no {key}")

    chart["keywords"] = _strings(meta, "keywords")
    chart["sources"] = _strings(meta, "sources")
    chart["maintainers"] = _objects(meta, "maintainers")
    chart["dependencies"] = _objects(meta, "dependencies")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ChartError("chart field annotations must be a map")
    chart["annotations"] = {str(k): str(v) for k, v in annotations.items()}
    deprecated = meta.get("deprecated", False)
    if not isinstance(deprecated, bool):
        raise ChartError("chart field deprecated must be a boolean")
    chart["deprecated"] = deprecated
    chart["warnings"] = name_warnings(chart["name"])
    return chart


def name_warnings(name: str) -> list[str]:
    """What Helm would say of a chart's name: names it refuses to load, and names it would not create.

    The chart is indexed either way (the registry took it); the warning tells its owner, and frontends
    quote the name wherever they put it in a command.
    """
    if not HELM_CHART_NAME.match(name):
        shown = json.dumps(name)[:200]
        if "/" in name or not "".join(c for c in name if c.isprintable()).strip():
            return [f"chart name {shown} is invalid: Helm refuses to load a chart named so"]
        return [f"chart name {shown} has characters Helm does not create charts with (letters, digits, '.', '_' and "
                "'-' only): commands that name it must quote it"]
    return []


def _strings(meta: dict, key: str) -> list[str]:
    value = meta.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ChartError(f"chart field {key} must be a list of strings")
    return value


def _objects(meta: dict, key: str) -> list[dict]:
    value = meta.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ChartError(f"chart field {key} must be a list of maps")
    return value


# artifacthub.io/* chart annotations users rely on (Artifact Hub's documented set): YAML lists,
# or booleans and strings, inside annotation strings.
_AH_LISTS = {"changes": "changes", "images": "images", "links": "links", "maintainers": "maintainers"}
_AH_FLAGS = {"prerelease": "prerelease", "containsSecurityUpdates": "contains_security_updates"}


def artifacthub_annotations(annotations: dict) -> dict:
    """The ``artifacthub.io/*`` annotations, parsed; a value that does not parse is left out."""
    parsed = {}
    for key, name in _AH_LISTS.items():
        text = annotations.get(f"artifacthub.io/{key}")
        if not text:
            continue
        try:
            # JSON round trip: explicit YAML tags (!!binary, !!set, !!timestamp) build values JSONB cannot hold.
            value = json.loads(json.dumps(yaml_document(text, f"artifacthub.io/{key}"), allow_nan=False))
        except (ValueError, TypeError, RecursionError):
            continue
        if isinstance(value, list):
            parsed[name] = [_change(v) for v in value] if key == "changes" else [v for v in value if isinstance(v, dict)]
    for key, name in _AH_FLAGS.items():
        if f"artifacthub.io/{key}" in annotations:
            parsed[name] = annotations[f"artifacthub.io/{key}"].strip().lower() == "true"
    if annotations.get("artifacthub.io/license"):
        parsed["license"] = annotations["artifacthub.io/license"]
    return parsed


def _change(entry) -> dict:
    """A change as Artifact Hub shows it: plain strings are descriptions of kind "changed"."""
    if isinstance(entry, dict):
        links = entry.get("links")
        return {"kind": str(entry.get("kind") or "changed"), "description": str(entry.get("description") or ""),
                "links": [l for l in links if isinstance(l, dict)] if isinstance(links, list) else []}
    return {"kind": "changed", "description": str(entry), "links": []}


def version_order(version: str) -> tuple[bool | None, str | None]:
    """(is prerelease, sort key) for listing chart versions in SemVer order; (None, None) if not SemVer.

    The key sorts in byte order (COLLATE "C") as SemVer 2 precedence: numeric
    fields zero-padded, then prerelease identifiers, numeric ones ("0" + padded)
    before alphanumeric ones ("1" + text), a shorter list before a longer one
    with the same start ("\\x01" sorts before any identifier character).
    Helm accepts a leading "v" and missing minor or patch numbers; so does this.
    """
    try:
        parsed = semver.Version.parse(version.removeprefix("v"), optional_minor_and_patch=True)
    except (ValueError, TypeError):
        return None, None
    key = f"{parsed.major:012d}.{parsed.minor:012d}.{parsed.patch:012d}"
    for identifier in (parsed.prerelease or "").split(".") if parsed.prerelease else ():
        key += "\x01" + (f"0{int(identifier):012d}" if identifier.isdigit() else f"1{identifier}")
    return bool(parsed.prerelease), key
