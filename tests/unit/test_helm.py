"""Helm chart metadata from the config blob: Chart.yaml fields checked, SemVer order, Artifact Hub annotations."""

from __future__ import annotations

import json
import random

import pytest

from indexer.helm import ChartError, artifacthub_annotations, parse_chart_config, version_order


def test_every_chart_yaml_field_is_read():
    chart = parse_chart_config(json.dumps({
        "apiVersion": "v2", "name": "webapp", "version": "1.2.3+build.4", "appVersion": 2.4, "kubeVersion": ">=1.25.0-0",
        "description": "d", "type": "application", "keywords": ["web"], "home": "https://example.com",
        "sources": ["https://example.com/src"], "maintainers": [{"name": "Jane"}],
        "dependencies": [{"name": "redis", "version": "17.x.x"}], "icon": "https://example.com/i.png",
        "deprecated": True, "annotations": {"category": "Demo", "n": 5},
    }).encode())
    assert chart["name"] == "webapp" and chart["version"] == "1.2.3+build.4"
    assert chart["app_version"] == "2.4"  # YAML numbers are strings to Helm
    assert chart["kube_version"] == ">=1.25.0-0" and chart["deprecated"] is True
    assert chart["annotations"] == {"category": "Demo", "n": "5"}
    assert chart["maintainers"] == [{"name": "Jane"}] and chart["keywords"] == ["web"]


@pytest.mark.parametrize("config, reason", [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (json.dumps({"version": "1.0.0"}).encode(), "has no name"),
    (json.dumps({"name": "a", "version": "1.0.0", "keywords": "web"}).encode(), "keywords must be a list of strings"),
    (json.dumps({"name": "a", "version": "1.0.0", "maintainers": ["Jane"]}).encode(), "maintainers must be a list of maps"),
    (json.dumps({"name": "a", "version": "1.0.0", "deprecated": "yes"}).encode(), "deprecated must be a boolean"),
    (json.dumps({"name": {"x": 1}, "version": "1.0.0"}).encode(), "name must be a string"),
])
def test_a_config_that_is_no_chart_is_refused_with_the_reason(config, reason):
    with pytest.raises(ChartError, match=reason):
        parse_chart_config(config)


def test_version_keys_sort_as_semver_precedence_among_releases_and_among_prereleases():
    """Releases and prereleases are ranked apart first (chart_version_rank), then by the key, in byte order."""
    def by_key(versions):
        return sorted(random.Random(1).sample(versions, len(versions)), key=lambda v: version_order(v)[1].encode())

    # SemVer 2.0.0 section 11's own example ...
    prereleases = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
                   "1.0.0-rc.1", "1.0.1-alpha"]
    assert by_key(prereleases) == prereleases
    # ... and releases, with Helm's leniencies (a leading v, missing minor or patch).
    releases = ["0.9.12", "1.0.0", "v1.0.1", "1.1", "1.10.0", "2"]
    assert by_key(releases) == releases
    assert version_order("1.0.0-rc.1")[0] is True and version_order("1.0.0+build.7")[0] is False
    assert version_order("1.0.0+build.7")[1] == version_order("1.0.0")[1]  # build metadata has no precedence
    assert version_order("latest") == (None, None)


def test_artifacthub_annotations_keep_only_json_values():
    parsed = artifacthub_annotations({
        "artifacthub.io/links": "- name: !!binary aGk=\n  url: x\n",  # bytes: not JSON, left out
        "artifacthub.io/changes": "- kind: fixed\n  description: d\n  links: 5\n- !!set {a}\n",
        "artifacthub.io/images": "not a list",
        "artifacthub.io/prerelease": "TRUE",
    })
    assert parsed == {"prerelease": True}
    parsed = artifacthub_annotations({"artifacthub.io/changes": "- kind: fixed\n  description: d\n  links: 5\n"})
    assert parsed == {"changes": [{"kind": "fixed", "description": "d", "links": []}]}
