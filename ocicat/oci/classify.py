"""What an artifact is, from its media types alone (the OCI image-spec, and the types each tool pushes).

One table maps media types to kinds; the order in which a manifest's types
are consulted is fixed by :func:`classify`. Unknown types are never an error:
they give kind ``artifact`` and the raw types stay on the manifest row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .media_types import (
    DOCKER_MANIFEST,
    EMPTY_CONFIG,
    HELM_CHART_LAYER,
    HELM_CONFIG,
    IMAGE_CONFIG_TYPES,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1,
    SIGSTORE_BUNDLE,
)

# Media type (as artifactType, config.mediaType or layer mediaType) -> kind.
# Prefix entries end with "*". Extend here; nothing else needs to change.
KINDS: dict[str, str] = {
    HELM_CONFIG: "helm-chart",
    HELM_CHART_LAYER: "helm-chart",
    "application/vnd.dev.cosign.simplesigning.v1+json": "signature",
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature",
    "application/vnd.cncf.notary.signature": "signature",
    "application/vnd.dsse.envelope.v1+json": "attestation",
    "application/vnd.in-toto+json": "attestation",
    "application/vnd.dev.cosign.artifact.att.v1+json": "attestation",
    SIGSTORE_BUNDLE: "attestation",
    "application/vnd.dev.cosign.artifact.sbom.v1+json": "sbom",
    "application/spdx+json": "sbom",
    "text/spdx": "sbom",
    "text/spdx+json": "sbom",
    "application/vnd.cyclonedx+json": "sbom",
    "application/vnd.cyclonedx+xml": "sbom",
    "application/vnd.syft+json": "sbom",
    "application/vnd.wasm.config.v0+json": "wasm",
    "application/vnd.wasm.config.v1+json": "wasm",
    "application/wasm": "wasm",
    "application/vnd.wasm.content.layer.v1+wasm": "wasm",
    "application/vnd.sylabs.sif.config.v1+json": "sif",
    "application/vnd.sylabs.sif.config.v1": "sif",
    "application/vnd.sylabs.sif.layer.v1.sif": "sif",
    "application/vnd.cncf.flux.config.v1+json": "flux",
    "application/vnd.cncf.flux.content.v1.tar+gzip": "flux",
    "application/vnd.cncf.openpolicyagent.*": "opa",
    "application/vnd.cnab.manifest.v1": "cnab",
    "application/vnd.cnab.config.v1+json": "cnab",
    "application/vnd.buildkit.cacheconfig.v0": "build-cache",
    "application/vnd.cncf.model.*": "model",
    "application/vnd.cnai.model.*": "model",
    "application/vnd.docker.ai.*": "model",
    "application/vnd.docker.plugin.v1+json": "plugin",
}

# Every kind the classifier can answer.
ALL_KINDS = frozenset(KINDS.values()) | {"image", "index", "artifact"}

_PREFIXES = tuple((k[:-1], v) for k, v in KINDS.items() if k.endswith("*"))
# Tags that name an attachment of another manifest, not a version: the OCI
# referrers fallback (sha256-<hex>) and cosign's legacy tags (.sig, .att, .sbom).
_ATTACHMENT_TAG = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$")
_LEGACY_TAG_KINDS = {"sig": "signature", "att": "attestation", "sbom": "sbom"}
SIGSTORE_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def kind_of(media_type: str | None) -> str | None:
    if not isinstance(media_type, str):
        return None
    if media_type in KINDS:
        return KINDS[media_type]
    for prefix, kind in _PREFIXES:
        if media_type.startswith(prefix):
            return kind
    return None


@dataclass(frozen=True)
class Classified:
    kind: str
    media_type: str
    artifact_type: str | None = None
    config_media_type: str | None = None
    config_digest: str | None = None
    config_size: int = 0
    subject_digest: str | None = None
    annotations: dict = field(default_factory=dict)
    layers: tuple[dict, ...] = ()
    children: tuple[dict, ...] = ()


def manifest_media_type(content_type: str | None, doc: dict) -> str:
    """Response Content-Type first, then the body's mediaType, then the body's shape (Helm omits mediaType)."""
    for candidate in (content_type, doc.get("mediaType")):
        if isinstance(candidate, str) and candidate and candidate not in ("application/json", "application/octet-stream"):
            return candidate
    if isinstance(doc.get("manifests"), list):
        return OCI_INDEX
    if doc.get("schemaVersion") == 1:
        return SCHEMA1[0]
    return OCI_MANIFEST


def classify(content_type: str | None, doc: dict, tag: str | None = None) -> Classified:
    """Kind and descriptors of one manifest; never raises on odd input."""
    media_type = manifest_media_type(content_type, doc)
    artifact_type = _str(doc.get("artifactType"))
    annotations = _str_dict(doc.get("annotations"))
    subject = doc.get("subject") if isinstance(doc.get("subject"), dict) else {}
    subject_digest = _str(subject.get("digest")) or attachment_subject(tag)

    if media_type in INDEX_TYPES or isinstance(doc.get("manifests"), list):
        children = tuple(_descriptor(d) for d in _list(doc.get("manifests")))
        kind = (
            kind_of(artifact_type)
            or kind_of(annotations.get("org.opencontainers.artifactType"))
            or ("build-cache" if any(kind_of(c["media_type"]) == "build-cache" for c in children) else None)
            or ("artifact" if artifact_type else "index")
        )
        return Classified(kind, media_type, artifact_type, subject_digest=subject_digest, annotations=annotations, children=children)

    if media_type in SCHEMA1:
        layers = tuple(
            {"media_type": "application/vnd.docker.container.image.rootfs.diff+x-gtar", "digest": _str(l.get("blobSum")) or "", "size_bytes": 0, "annotations": {}}
            for l in _list(doc.get("fsLayers"))
            if isinstance(l, dict)
        )
        return Classified("image", media_type, layers=layers)

    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    config_type = _str(config.get("mediaType"))
    layers = tuple(_descriptor(d) for d in _list(doc.get("layers") or doc.get("blobs")))
    kind = (
        _bundle_kind(artifact_type, annotations)
        or kind_of(artifact_type)
        or (kind_of(config_type) if config_type not in IMAGE_CONFIG_TYPES + (EMPTY_CONFIG,) else None)
        or next((k for k in (kind_of(l["media_type"]) for l in layers) if k), None)
        or _legacy_tag_kind(tag)
    )
    if kind is None:
        known_image = config_type in IMAGE_CONFIG_TYPES or media_type == DOCKER_MANIFEST
        kind = "image" if known_image and not artifact_type else "artifact"
    return Classified(
        kind,
        media_type,
        artifact_type,
        config_media_type=config_type,
        config_digest=_str(config.get("digest")),
        config_size=_size(config.get("size")),
        subject_digest=subject_digest,
        annotations=annotations,
        layers=layers,
    )


def attachment_subject(tag: str | None) -> str | None:
    """The digest a referrers-fallback or cosign legacy tag attaches to, else None."""
    match = _ATTACHMENT_TAG.match(tag or "")
    return f"sha256:{match.group(1)}" if match else None


def _legacy_tag_kind(tag: str | None) -> str | None:
    match = _ATTACHMENT_TAG.match(tag or "")
    return _LEGACY_TAG_KINDS.get(match.group(2)) if match else None


def _bundle_kind(artifact_type: str | None, annotations: dict) -> str | None:
    """cosign v3 stores signatures and attestations alike as sigstore bundles; the predicate type tells them apart."""
    if artifact_type != SIGSTORE_BUNDLE:
        return None
    predicate = annotations.get("dev.sigstore.bundle.predicateType")
    return "signature" if predicate == SIGSTORE_SIGN_PREDICATE else "attestation"


def _descriptor(raw) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    platform = raw.get("platform")
    return {
        "media_type": _str(raw.get("mediaType")) or "",
        "digest": _str(raw.get("digest")) or "",
        "size_bytes": _size(raw.get("size")),
        "platform": platform if isinstance(platform, dict) else None,
        "annotations": _str_dict(raw.get("annotations")),
    }


def _str(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _size(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else 0


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _str_dict(value) -> dict:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
