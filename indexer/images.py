"""Container image metadata: the config blob's summary, and the annotations users look for.

OCI annotations live on the manifest; many images carry the same facts only as
config labels, and older ones as label-schema labels (OCI image-spec ``annotations.md``, label-schema.org). One
merged view, in that order of precedence, is stored as the manifest's metadata.
"""

from __future__ import annotations

from ocicat.untrusted import json_object

# metadata key -> (OCI annotation/label, label-schema fallback)
METADATA_KEYS = {
    "title": ("org.opencontainers.image.title", "org.label-schema.name"),
    "description": ("org.opencontainers.image.description", "org.label-schema.description"),
    "source": ("org.opencontainers.image.source", "org.label-schema.vcs-url"),
    "url": ("org.opencontainers.image.url", "org.label-schema.url"),
    "documentation": ("org.opencontainers.image.documentation", "org.label-schema.usage"),
    "licenses": ("org.opencontainers.image.licenses", None),
    "vendor": ("org.opencontainers.image.vendor", "org.label-schema.vendor"),
    "version": ("org.opencontainers.image.version", "org.label-schema.version"),
    "revision": ("org.opencontainers.image.revision", "org.label-schema.vcs-ref"),
    "authors": ("org.opencontainers.image.authors", None),
    "created": ("org.opencontainers.image.created", "org.label-schema.build-date"),
    "base_name": ("org.opencontainers.image.base.name", None),
    "base_digest": ("org.opencontainers.image.base.digest", None),
}
MAX_LABEL = 8 * 1024


def metadata(annotations: dict, labels: dict | None = None) -> dict:
    """The surfaced metadata: manifest annotation, else config label, else label-schema label."""
    labels = labels or {}
    found = {}
    for key, (oci, legacy) in METADATA_KEYS.items():
        for value in (annotations.get(oci), labels.get(oci), labels.get(legacy) if legacy else None):
            if isinstance(value, str) and value:
                found[key] = value[:MAX_LABEL]
                break
    return found


def parse_image_config(blob: bytes) -> dict:
    """Column values for ``image_configs``; ValueError if the blob is not an image config."""
    config = json_object(blob, "image config")
    runtime = config.get("config") if isinstance(config.get("config"), dict) else {}
    labels = runtime.get("Labels") if isinstance(runtime.get("Labels"), dict) else {}
    history = config.get("history")
    return {
        "os": _text(config.get("os")),
        "architecture": _text(config.get("architecture")),
        "variant": _text(config.get("variant")),
        "os_version": _text(config.get("os.version")),
        "created": _text(config.get("created")),
        "author": _text(config.get("author")),
        "labels": {k: v[:MAX_LABEL] for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)},
        "history": len(history) if isinstance(history, list) else 0,
    }


def _text(value) -> str | None:
    return value[:MAX_LABEL] if isinstance(value, str) and value else None
