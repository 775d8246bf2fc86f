"""Every kind of artifact, pushed for real to a real registry, classified and described through the API."""

from __future__ import annotations

import json
import uuid

import pytest

from harness.oci import push_artifact, push_blob, push_image, push_index, push_manifest
from harness.processes import wait_until

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _image_config(**labels) -> tuple[str, bytes]:
    return IMAGE_CONFIG, json.dumps({"os": "linux", "architecture": "arm64", "variant": "v8",
                                     "created": "2026-11-01T10:00:00Z", "config": {"Labels": labels},
                                     "history": [{"created_by": "a"}, {"created_by": "b"}],
                                     "rootfs": {"type": "layers", "diff_ids": []}}).encode()


# name -> (how to push it, the kind ocicat must report)
KINDS = {
    "oci-artifact-wasm": (dict(config=("application/vnd.wasm.config.v0+json", b'{"os": "wasip2", "architecture": "wasm"}'),
                               layers=[("application/wasm", b"\0asm")]), "wasm"),
    "sif": (dict(config=("application/vnd.sylabs.sif.config.v1+json", b"{}"),
                 layers=[("application/vnd.sylabs.sif.layer.v1.sif", b"SIF")]), "sif"),
    "flux": (dict(config=("application/vnd.cncf.flux.config.v1+json", b"{}"),
                  layers=[("application/vnd.cncf.flux.content.v1.tar+gzip", b"flux")]), "flux"),
    "opa": (dict(config=("application/vnd.cncf.openpolicyagent.config.v1+json", b"{}"),
                 layers=[("application/vnd.cncf.openpolicyagent.policy.layer.v1+rego", b"package x")]), "opa"),
    "cnab-config": (dict(config=("application/vnd.cnab.config.v1+json", b"{}")), "cnab"),
    "buildkit-cache": (dict(config=("application/vnd.buildkit.cacheconfig.v0", b"{}"),
                            layers=[(LAYER, b"cache")]), "build-cache"),
    "modelpack": (dict(artifact_type="application/vnd.cncf.model.manifest.v1+json",
                       config=("application/vnd.cncf.model.config.v1+json", b"{}"),
                       layers=[("application/vnd.cncf.model.weight.v1.raw", b"w")]), "model"),
    "modelpack-old": (dict(artifact_type="application/vnd.cnai.model.manifest.v1+json",
                           config=("application/vnd.cnai.model.config.v1+json", b"{}")), "model"),
    "docker-model": (dict(config=("application/vnd.docker.ai.model.config.v0.1+json", b"{}"),
                          layers=[("application/vnd.docker.ai.gguf.v3", b"gguf")]), "model"),
    "plugin": (dict(config=("application/vnd.docker.plugin.v1+json", b"{}"), media_type=DOCKER_MANIFEST,
                    layers=[("application/vnd.docker.image.rootfs.diff.tar.gzip", b"p")]), "plugin"),
    "oras-generic": (dict(artifact_type="application/vnd.unknown.artifact.v1", layers=[("text/plain", b"hi")]),
                     "artifact"),
    "unknown-config": (dict(config=("application/x-something-new+json", b"{}")), "artifact"),
    "unknown-artifact-type": (dict(artifact_type="application/x-brand-new", layers=[(LAYER, b"x")]), "artifact"),
    "docker-image": (dict(config=("application/vnd.docker.container.image.v1+json", _image_config()[1]),
                          media_type=DOCKER_MANIFEST,
                          layers=[("application/vnd.docker.image.rootfs.diff.tar.gzip", b"layer")]), "image"),
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_is_classified(stack, name):
    push, kind = KINDS[name]
    repository = f"kinds-{uuid.uuid4().hex[:8]}/{name}"
    digest = push_artifact(stack.registry.url, repository, "v1", **push)
    tag = wait_until(lambda: stack.tags(repository).get("v1"), timeout=60, what=f"{name} to be indexed")
    assert (tag["kind"], tag["digest"]) == (kind, digest)
    detail = stack.get(f"/api/v1/repositories/{repository}/-/manifests/{digest}").json()
    assert detail["kind"] == kind and detail["tags"] == ["v1"] and detail["error"] is None


def test_image_config_and_annotations_are_surfaced(stack):
    repository = f"img-{uuid.uuid4().hex[:8]}/api"
    digest = push_artifact(
        stack.registry.url, repository, "1.0",
        config=_image_config(**{"org.label-schema.vcs-url": "https://git.example/api",
                                "org.opencontainers.image.vendor": "Example"}),
        layers=[(LAYER, b"one"), (LAYER, b"two!")],
        annotations={"org.opencontainers.image.title": "API", "org.opencontainers.image.licenses": "Apache-2.0",
                     "org.opencontainers.image.base.name": "docker.io/library/alpine:3"},
    )
    wait_until(lambda: stack.tags(repository).get("1.0"), timeout=60, what="the image")
    detail = stack.get(f"/api/v1/repositories/{repository}/-/manifests/{digest}").json()
    assert detail["kind"] == "image"
    assert detail["image_config"] == {
        "os": "linux", "architecture": "arm64", "variant": "v8", "os_version": None, "created": "2026-11-01T10:00:00Z",
        "author": None, "history": 2,
        "labels": {"org.label-schema.vcs-url": "https://git.example/api", "org.opencontainers.image.vendor": "Example"},
    }
    assert detail["metadata"] == {"title": "API", "licenses": "Apache-2.0", "source": "https://git.example/api",
                                  "vendor": "Example", "base_name": "docker.io/library/alpine:3"}
    assert [l["size_bytes"] for l in detail["layers"]] == [3, 4]
    assert detail["size_bytes"] > 7


def test_index_platforms_leave_out_attestation_entries(stack):
    repository = f"multi-{uuid.uuid4().hex[:8]}/app"
    amd = push_image(stack.registry.url, repository, "amd64", seed="amd")
    arm = push_image(stack.registry.url, repository, "arm64", seed="arm")
    attestation = push_artifact(stack.registry.url, repository, None, config=_image_config(),
                                layers=[("application/vnd.in-toto+json", b"{}")])
    entries = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": 1,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": attestation, "size": 1,
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd}},
    ]
    oci = push_index(stack.registry.url, repository, "latest", entries)
    docker = push_index(stack.registry.url, repository, "docker-list", entries[:2], media_type=DOCKER_LIST)
    tags = wait_until(lambda: {"latest", "docker-list"} <= set(stack.tags(repository)) and stack.tags(repository),
                      timeout=60, what="both indexes")
    assert tags["latest"]["kind"] == "index" and tags["docker-list"]["kind"] == "index"
    assert sorted(tags["latest"]["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    detail = stack.get(f"/api/v1/repositories/{repository}/-/manifests/{oci}").json()
    assert [c["digest"] for c in detail["children"]] == [amd, arm, attestation]
    assert stack.get(f"/api/v1/repositories/{repository}/-/manifests/{docker}").json()["media_type"] == DOCKER_LIST


def test_cnab_bundle_index(stack):
    repository = f"cnab-{uuid.uuid4().hex[:8]}/bundle"
    config = push_artifact(stack.registry.url, repository, None, config=("application/vnd.cnab.config.v1+json", b"{}"))
    push_index(stack.registry.url, repository, "v1", [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": config, "size": 1,
         "annotations": {"io.cnab.manifest.type": "config"}}],
        annotations={"org.opencontainers.artifactType": "application/vnd.cnab.manifest.v1"})
    assert wait_until(lambda: stack.tags(repository).get("v1"), timeout=60, what="the bundle")["kind"] == "cnab"


def test_attachments_describe_their_subject_even_when_pushed_first(stack):
    repository = f"signed-{uuid.uuid4().hex[:8]}/app"
    # The subject's digest is known before it exists: attachments arrive first.
    config = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = b"the app"
    subject_manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": IMAGE_CONFIG, "digest": push_blob(stack.registry.url, repository, config),
                   "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": push_blob(stack.registry.url, repository, layer), "size": len(layer)}],
    }).encode()
    import hashlib

    subject = "sha256:" + hashlib.sha256(subject_manifest).hexdigest()
    hexpart = subject.split(":")[1]
    cosign_sig = push_artifact(stack.registry.url, repository, f"sha256-{hexpart}.sig", config=_image_config(),
                               layers=[("application/vnd.dev.cosign.simplesigning.v1+json", b"{}")])
    cosign_att = push_artifact(stack.registry.url, repository, f"sha256-{hexpart}.att", config=_image_config(),
                               layers=[("application/vnd.dsse.envelope.v1+json", b"{}")],
                               layer_annotations={"predicateType": "https://slsa.dev/provenance/v1"})
    sbom = push_artifact(stack.registry.url, repository, None, artifact_type="application/spdx+json",
                         layers=[("application/spdx+json", b"{}")], subject=subject)
    notary = push_artifact(stack.registry.url, repository, None, artifact_type="application/vnd.cncf.notary.signature",
                           layers=[("application/jose+json", b"{}")], subject=subject)
    bundle_sig = push_artifact(stack.registry.url, repository, None,
                               artifact_type="application/vnd.dev.sigstore.bundle.v0.3+json",
                               layers=[("application/vnd.dev.sigstore.bundle.v0.3+json", b"{}")], subject=subject,
                               annotations={"dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"})
    bundle_att = push_artifact(stack.registry.url, repository, None,
                               artifact_type="application/vnd.dev.sigstore.bundle.v0.3+json",
                               layers=[("application/vnd.dev.sigstore.bundle.v0.3+json", b"{}")], subject=subject,
                               annotations={"dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1"})
    intoto = push_artifact(stack.registry.url, repository, None, artifact_type="application/vnd.in-toto+json",
                           layers=[("application/vnd.in-toto+json", b"{}")], subject=subject)
    referrers = push_index(stack.registry.url, repository, f"sha256-{hexpart}", [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sbom, "size": 1,
         "artifactType": "application/spdx+json"}])
    push_manifest(stack.registry.url, repository, "v1", subject_manifest, "application/vnd.oci.image.manifest.v1+json")

    def indexed():
        detail = stack.get(f"/api/v1/repositories/{repository}/-/manifests/{subject}")
        return detail.status_code == 200 and len(detail.json()["attachments"]) == 8 and detail.json()

    detail = wait_until(indexed, timeout=60, what="the subject and its eight attachments")
    kinds = {a["digest"]: a["kind"] for a in detail["attachments"]}
    assert kinds == {cosign_sig: "signature", cosign_att: "attestation", sbom: "sbom", notary: "signature",
                     bundle_sig: "signature", bundle_att: "attestation", intoto: "attestation", referrers: "index"}
    assert (detail["signed"], detail["has_sbom"], detail["attestations"]) == (True, True, 3)
    tags = stack.tags(repository)
    assert list(tags) == ["v1"]  # attachment tags are not versions
    assert (tags["v1"]["signed"], tags["v1"]["has_sbom"], tags["v1"]["attestations"]) == (True, True, 3)
