"""A catalog event as a CloudEvent 1.0 (the ``cloudevents`` SDK), the one shape every output starts from.

``id`` is the outbox row's id (unique per ``source``, so a receiver dedupes by it), ``source`` the catalog's public
URL, ``type`` ``dev.ocicat.<event type>``, ``subject`` the repository and tag (or digest), ``time`` the registry
event's time (or the crawl's observation); ``partitionkey`` (the Kafka binding's extension) is the repository, so
one repository's events stay in order on one partition. The data is the outbox row's, with links to the UI page and
the API resource added here: they depend on OCICAT_PUBLIC_URL, which may change after the event was recorded.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from cloudevents.core.bindings import http, kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from ocicat.catalog.outbox import links

TYPE_PREFIX = "dev.ocicat."
_FORMAT = JSONFormat()


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


def ping(delivery_id: int, subscription: str, public_url: str) -> CloudEvent:
    """The test event a subscription's owner sends from the API, the CLI or the UI."""
    return CloudEvent(
        attributes={"id": f"ping-{delivery_id}", "source": public_url, "type": TYPE_PREFIX + "ping",
                    "time": datetime.now(timezone.utc), "datacontenttype": "application/json"},
        data={"subscription": subscription, "message": "ocicat can reach this URL"},
    )


def http_message(event: CloudEvent, format_: str) -> http.HTTPMessage:
    """An event as an HTTP request: CloudEvents structured mode (the whole event as ``application/cloudevents+json``),
    binary mode (attributes as ``ce-*`` headers, the data as the JSON body), or a Slack incoming-webhook message."""
    if format_ == "cloudevents":
        return http.to_structured(event, _FORMAT)
    if format_ == "cloudevents-binary":
        return http.to_binary(event, _FORMAT)
    body = json.dumps({"text": slack_text(event)}, ensure_ascii=False).encode()
    return http.HTTPMessage(headers={"content-type": "application/json"}, body=body)


def slack_text(event: CloudEvent) -> str:
    """One line for a chat channel, with a link to the page (Slack's mrkdwn: <url|text>, with & < > escaped)."""
    data = event.get_data() or {}
    kind = event.get_type().removeprefix(TYPE_PREFIX)
    if kind == "ping":
        return "ocicat: test message for subscription " + _escape(data.get("subscription", ""))
    chart = data.get("chart")
    what = (f"{chart['name']} {chart['version']}" if chart and kind != "manifest.deleted" else event.get_subject())
    text = f"{_escape(kind)}: {_escape(what)}"
    if data.get("previous_digest") and kind == "tag.moved":
        text += f" (was {_escape(data['previous_digest'][:19])})"
    link = (data.get("links") or {}).get("ui")
    return f"<{_escape(link)}|{text}>" if link else text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def kafka_message(event: CloudEvent) -> kafka.KafkaMessage:
    """Kafka structured mode, keyed by the repository (``partitionkey``)."""
    return kafka.to_structured(event, _FORMAT)
