"""Pushing to a registry through its HTTP API, the way ORAS, cosign, Helm and docker lay artifacts out."""

from __future__ import annotations

import hashlib
import json

import requests
import yaml

from ocicat.oci.media_types import EMPTY_CONFIG as EMPTY_CONFIG_TYPE
from ocicat.oci.media_types import HELM_CHART_LAYER, HELM_CONFIG, IMAGE_CONFIG_TYPES, OCI_INDEX, OCI_MANIFEST

from .chart_archives import chart_tgz

EMPTY_CONFIG = (EMPTY_CONFIG_TYPE, b"{}")


def push_blob(registry_url: str, repository: str, data: bytes, session: requests.Session | None = None) -> str:
    """Monolithic blob upload (POST then PUT ?digest=)."""
    http = session or requests
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = http.post(f"{registry_url}/v2/{repository}/blobs/uploads/", timeout=10)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = registry_url + location
    put = http.put(
        location, params={"digest": digest}, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=10
    )
    put.raise_for_status()
    return digest


def push_manifest(registry_url: str, repository: str, reference: str, manifest: dict | bytes, media_type: str,
                  session: requests.Session | None = None) -> str:
    http = session or requests
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    response = http.put(
        f"{registry_url}/v2/{repository}/manifests/{reference}", data=body, headers={"Content-Type": media_type}, timeout=10
    )
    response.raise_for_status()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def push_image(registry_url: str, repository: str, tag: str, seed: str = "", session: requests.Session | None = None) -> str:
    """A small but real OCI image (config + one layer), pushed the way any client would."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": {"seed": seed}},
         "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    layer = f"layer {repository} {tag} {seed}".encode()
    config_digest = push_blob(registry_url, repository, config, session)
    layer_digest = push_blob(registry_url, repository, layer, session)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": IMAGE_CONFIG_TYPES[0], "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": len(layer)}],
    }
    return push_manifest(registry_url, repository, tag, manifest, manifest["mediaType"], session)


def push_chart(registry_url: str, repository: str, tag: str, version: str, session: requests.Session | None = None,
               files: dict | None = None, **metadata) -> str:
    """Push a chart the way ``helm push`` lays it out (config blob, chart layer, no top-level mediaType); ``files``
    (path in the chart: text) are added to (or replace) its Chart.yaml and values.yaml.

    Faster than driving Helm for benchmarks that push hundreds; the end-to-end
    tests use real Helm.
    """
    name = repository.rsplit("/", 1)[-1]
    config = json.dumps({"name": name, "version": version, "apiVersion": "v2", "type": "application", **metadata}).encode()
    chart_yaml = yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version, "type": "application"})
    layer = chart_tgz({"Chart.yaml": chart_yaml, "values.yaml": "replicaCount: 1\n", **(files or {})}, top=name)
    manifest = {
        "schemaVersion": 2,
        "config": {"mediaType": HELM_CONFIG,
                   "digest": push_blob(registry_url, repository, config, session), "size": len(config)},
        "layers": [{"mediaType": HELM_CHART_LAYER,
                    "digest": push_blob(registry_url, repository, layer, session), "size": len(layer)}],
        "annotations": {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version},
    }
    return push_manifest(registry_url, repository, tag, manifest, OCI_MANIFEST, session)


def push_artifact(registry_url: str, repository: str, tag: str | None, config: tuple[str, bytes] = EMPTY_CONFIG,
                  layers: list[tuple[str, bytes]] = (), media_type: str | None = OCI_MANIFEST,
                  artifact_type: str | None = None, subject: str | None = None, annotations: dict | None = None,
                  layer_annotations: dict | None = None) -> str:
    """Upload blobs and an image manifest the way ORAS, cosign, notation and friends do; returns its digest."""
    config_type, config_bytes = config
    manifest: dict = {"schemaVersion": 2}
    if media_type:
        manifest["mediaType"] = media_type
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = {"mediaType": config_type, "digest": push_blob(registry_url, repository, config_bytes),
                          "size": len(config_bytes)}
    manifest["layers"] = [
        {"mediaType": layer_type, "digest": push_blob(registry_url, repository, data), "size": len(data),
         **({"annotations": layer_annotations} if layer_annotations else {})}
        for layer_type, data in layers
    ]
    if subject:
        manifest["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
    if annotations:
        manifest["annotations"] = annotations
    body = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return push_manifest(registry_url, repository, tag or digest, body, media_type or OCI_MANIFEST)


def push_index(registry_url: str, repository: str, tag: str, entries: list[dict], media_type: str = OCI_INDEX,
               annotations: dict | None = None) -> str:
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    if annotations:
        index["annotations"] = annotations
    return push_manifest(registry_url, repository, tag, index, media_type)
