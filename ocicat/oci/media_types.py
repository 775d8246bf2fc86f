"""Media types ocicat reads: manifests, configs and layers of images, Helm charts and attachments.

From the OCI image-spec (``media-types.md``), Docker's manifest v2 spec, Helm (``pkg/registry/constants.go``) and
sigstore (``cosign``); the kinds of the rest are in classify.KINDS.
"""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
# What a client asks the registry for: every manifest and index type ocicat can read.
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)

IMAGE_CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_CHART_LAYERS = (HELM_CHART_LAYER, "application/tar+gzip")
HELM_PROVENANCE = "application/vnd.cncf.helm.chart.provenance.v1.prov"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"

# What Distribution's blob writer labels every blob push with in its notifications.
BLOB = "application/octet-stream"
