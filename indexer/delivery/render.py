"""A catalog event as a CloudEvent 1.0 (the ``cloudevents`` SDK), the one shape every output starts from.

``id`` is the outbox row's id (unique per ``source``, so a receiver dedupes by it), ``source`` the catalog's public
URL, ``type`` ``dev.ocicat.<event type>``, ``subject`` the repository and tag (or digest), ``time`` the registry
event's time (or the crawl's observation); ``partitionkey`` (the Kafka binding's extension) is the repository, so
one repository's events stay in order on one partition. The data is the outbox row's, with links to the UI page and
the API resource added here: they depend on OCICAT_PUBLIC_URL, which may change after the event was recorded.
"""

from __future__ import annotations

from urllib.parse import quote

from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

TYPE_PREFIX = "dev.ocicat."
_FORMAT = JSONFormat()


def links(public_url: str, event_type: str, data: dict) -> dict:
    """Where a receiver reads more: the chart version, else the manifest (an attachment's subject), else, for what
    was deleted, the repository."""
    repository = quote(data["repository"])
    ui, api = f"{public_url}/ui/repositories/{repository}", f"{public_url}/api/v1/repositories/{repository}"
    if event_type in ("tag.deleted", "manifest.deleted"):
        return {"ui": ui, "api": api}
    if data.get("chart"):
        version = quote(data["chart"]["version"], safe="")
        return {"ui": f"{public_url}/ui/charts/{repository}/{version}",
                "api": f"{public_url}/api/v1/charts/{repository}/-/versions/{version}"}
    digest = data.get("subject_digest") or data["digest"]
    return {"ui": f"{ui}/-/manifests/{digest}", "api": f"{api}/-/manifests/{digest}"}


def cloudevent(row: dict, public_url: str) -> CloudEvent:
    """The CloudEvent of an outbox row (ocicat.catalog.outbox)."""
    data = row["data"]
    reference = f":{row['tag']}" if row["tag"] else f"@{row['digest']}" if row["digest"] else ""
    return CloudEvent(
        attributes={
            "id": str(row["id"]),
            "source": public_url,
            "type": TYPE_PREFIX + row["type"],
            "subject": row["repository"] + reference,
            "time": row["occurred_at"],
            "datacontenttype": "application/json",
            "partitionkey": row["repository"],
        },
        data={**data, "links": links(public_url, row["type"], data)},
    )


def kafka_message(event: CloudEvent) -> kafka.KafkaMessage:
    """Kafka structured mode, keyed by the repository (``partitionkey``)."""
    return kafka.to_structured(event, _FORMAT)
