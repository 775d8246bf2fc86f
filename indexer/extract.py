"""A manifest made ready to store: decoded, classified, and what it points at fetched and parsed.

No database here: both ways into the catalog extract before any transaction
opens (the event path in indexing.EventIndexer.prepare, a crawl in
indexer.resync), so a slow registry or a 100 MiB chart layer never holds a
connection or a lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocicat import compare
from ocicat.catalog.writes import Details
from ocicat.errors import NotFound, PermanentError
from ocicat.oci.classify import Classified, classify
from ocicat.oci.media_types import HELM_CHART_LAYERS, HELM_CONFIG, HELM_PROVENANCE, IMAGE_CONFIG_TYPES
from ocicat.untrusted import json_object, storable

from . import images
from .chart_archive import ChartArchiveError, read_chart_archive
from .helm import artifacthub_annotations, parse_chart_config, version_order
from .readme import readme_html
from .registry import Fetched, RegistryClient

# Compressed size of a chart layer; Helm's own cap is 100 MiB decompressed.
MAX_CHART_LAYER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Extracted:
    """A manifest decoded, classified and with what it points at fetched and parsed: ready to store."""

    size: int
    doc: dict
    classified: Classified
    details: Details


class Extractor:
    def __init__(self, registry: RegistryClient):
        self.registry = registry

    def extract(self, repository: str, tag: str | None, fetched: Fetched) -> Extracted:
        """Decode and classify a fetched manifest, and fetch and parse what it points at."""
        # Everything decoded from the registry is untrusted: made storable right here.
        try:
            doc = storable(json_object(fetched.body, "manifest"))
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        classified = classify(fetched.media_type, doc, tag)
        return Extracted(len(fetched.body), doc, classified, self._details(repository, classified))

    def _details(self, repository: str, classified: Classified) -> Details:
        """Fetch and parse what the manifest points at.

        Bad contents (a config that is not JSON, a hostile chart archive, a
        missing blob) are recorded on the manifest and indexing goes on;
        only transient failures propagate, so the event is retried.
        """
        details = Details(metadata=images.metadata(classified.annotations))
        try:
            if classified.config_media_type == HELM_CONFIG and classified.config_digest:
                details.chart = parse_chart_config(self.registry.get_blob(repository, classified.config_digest))
                details.chart["prerelease"], details.chart["version_key"] = version_order(details.chart["version"])
                details.error = self._chart_contents(repository, classified, details)
            elif classified.kind == "image" and classified.config_media_type in IMAGE_CONFIG_TYPES:
                blob = self.registry.get_blob(repository, classified.config_digest or "")
                details.image_config = images.parse_image_config(blob)
                details.metadata = images.metadata(classified.annotations, details.image_config["labels"])
        except (ValueError, PermanentError) as exc:  # ChartError and malformed configs are ValueErrors
            details.error = str(exc)
        except NotFound as exc:
            details.error = f"blob missing from the registry: {exc}"
        return Details(
            chart=storable(details.chart),
            sources=details.sources,
            image_config=storable(details.image_config),
            metadata=storable(details.metadata),
            error=storable(details.error),
        )

    def _chart_contents(self, repository: str, classified: Classified, details: Details) -> str | None:
        """Add the chart layer's contents to ``details``; the reason if the layer was refused."""
        chart = details.chart
        chart["has_provenance"] = any(l["media_type"] == HELM_PROVENANCE for l in classified.layers)
        chart["artifacthub"] = artifacthub_annotations(chart["annotations"])
        layer = next((l for l in classified.layers if l["media_type"] in HELM_CHART_LAYERS), None)
        if layer is None:
            return "chart has no chart layer"
        try:
            with self.registry.open_blob(repository, layer["digest"], MAX_CHART_LAYER_BYTES) as blob:
                contents = read_chart_archive(blob)
                blob.verify()
        except (ChartArchiveError, PermanentError) as exc:
            return f"chart layer refused: {exc}"
        except NotFound:
            return f"chart layer {layer['digest']} is missing from the registry"
        chart.update(
            readme=contents.readme,
            readme_html=readme_html(contents.readme),
            values_yaml=contents.values,
            values_parsed=compare.parsed_values(contents.values),
            values_schema=contents.values_schema,
            templates=contents.templates,
            crds=contents.crds,
            chart_lock=contents.chart_lock,
        )
        details.sources = contents.sources
        if not chart["dependencies"] and contents.requirements:  # apiVersion v1 charts: requirements.yaml
            chart["dependencies"] = contents.requirements
        chart["warnings"] += contents.warnings
        return None
