"""The classifier is pure logic: checked on the spec's examples and on anything hypothesis can build."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ocicat.oci.classify import ALL_KINDS, KINDS, attachment_subject, classify

MEDIA_TYPES = st.sampled_from(sorted(KINDS) + [
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.config.v1+json", "application/vnd.oci.empty.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.dev.sigstore.bundle.v0.3+json",
]) | st.text(max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20) | MEDIA_TYPES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12) | st.sampled_from(
        ["mediaType", "artifactType", "config", "layers", "manifests", "subject", "annotations", "digest", "size",
         "platform", "blobs", "schemaVersion", "fsLayers"]), inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["mediaType", "artifactType", "config", "layers", "manifests", "subject",
                                            "annotations", "schemaVersion", "blobs", "fsLayers"]), JSON, max_size=8),
       content_type=st.none() | MEDIA_TYPES, tag=st.none() | st.text(max_size=80))
def test_any_manifest_gets_a_kind_and_never_raises(doc, content_type, tag):
    result = classify(content_type, doc, tag)
    assert result.kind in ALL_KINDS
    assert isinstance(result.media_type, str) and result.media_type
    json.dumps([result.annotations, result.layers, result.children])  # storable shapes only


def test_helm_manifest_without_media_type_is_a_chart():
    doc = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:1", "size": 1},
           "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": "sha256:2", "size": 5}]}
    result = classify(None, doc)
    assert (result.kind, result.media_type, result.config_size) == ("helm-chart", "application/vnd.oci.image.manifest.v1+json", 1)


def test_schema1_is_a_legacy_image():
    doc = {"schemaVersion": 1, "name": "x", "tag": "v1", "fsLayers": [{"blobSum": "sha256:a"}]}
    assert classify("application/vnd.docker.distribution.manifest.v1+prettyjws", doc).kind == "image"
    assert classify(None, doc).media_type == "application/vnd.docker.distribution.manifest.v1+json"


def test_legacy_oci_artifact_manifest_uses_its_blobs():
    doc = {"mediaType": "application/vnd.oci.artifact.manifest.v1+json", "artifactType": "application/vnd.example",
           "blobs": [{"mediaType": "application/spdx+json", "digest": "sha256:1", "size": 1}]}
    assert classify(None, doc).kind == "sbom"


def test_buildkit_cache_index_of_blobs():
    doc = {"mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [{"mediaType": "application/vnd.buildkit.cacheconfig.v0", "digest": "sha256:1", "size": 1},
                         {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:2", "size": 1}]}
    assert classify(None, doc).kind == "build-cache"


def test_attachment_tags():
    hexpart = "ab" * 32
    assert attachment_subject(f"sha256-{hexpart}") == f"sha256:{hexpart}"
    assert attachment_subject(f"sha256-{hexpart}.sig") == f"sha256:{hexpart}"
    assert attachment_subject(f"sha256-{hexpart}.att") == f"sha256:{hexpart}"
    assert attachment_subject(f"sha256-{hexpart}.sbom") == f"sha256:{hexpart}"
    assert attachment_subject("v1.0.0") is None and attachment_subject(f"sha256-{hexpart}.txt") is None
    assert attachment_subject(None) is None


def test_an_index_with_an_unknown_artifact_type_is_an_artifact():
    doc = {"mediaType": "application/vnd.oci.image.index.v1+json", "artifactType": "application/x-new", "manifests": []}
    assert classify(None, doc).kind == "artifact"
