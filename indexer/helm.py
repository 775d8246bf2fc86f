"""Helm chart metadata from the config blob Helm pushes (Chart.yaml as JSON, specs.md section 4).

The config blob is untrusted input: every field is type-checked, and a blob
that is not a chart becomes a recorded error on the manifest, not a crash.
"""

from __future__ import annotations

from .untrusted import json_object

MAX_TEXT = 64 * 1024  # no Chart.yaml string field is anywhere near this in practice


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
    return chart


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
