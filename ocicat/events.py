"""Registry notification events: which ones matter, what a valid one looks like, and where they go.

The receiver (api) and the worker (indexer) share this module: the bus
stores each kept event in the registry's own shape, and the worker re-reads
it through the same schema, so a dead letter replayed later goes through the
same checks. The receiver hands events to a :class:`Publisher`, which the bus
implements (indexer.bus); neither side knows the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from .oci.media_types import BLOB
from .oci.names import DIGEST_RE, MAX_REPOSITORY_LENGTH, REPOSITORY_RE, TAG_RE

# Registries send UUIDs; anything printable is accepted, nothing that could break a log line or a column.
ID_RE = re.compile(r"^[\x21-\x7e]{1,200}\Z")


class Timestamp(fields.Field):
    """RFC 3339 with nanoseconds and any offset, as Go's time.Time marshals it.

    Python 3.11's ``fromisoformat`` reads that format (it keeps microseconds);
    a timestamp without an offset is taken as UTC.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 64:
            raise ValidationError("must be an RFC 3339 timestamp string")
        text = re.sub(r"(\.\d{6})\d+", r"\1", value)  # nanoseconds -> microseconds
        try:
            parsed = datetime.fromisoformat(text)
            parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        except (ValueError, OverflowError):
            raise ValidationError(f"not an RFC 3339 timestamp: {value!r}") from None
        # Years outside this range are no registry's clock; they would also not
        # survive a round trip through PostgreSQL into Python.
        if not 2000 <= parsed.year <= 9000:
            raise ValidationError(f"timestamp out of range: {value!r}")
        return parsed


class TargetSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    repository = fields.Str(
        required=True,
        validate=[validate.Length(max=MAX_REPOSITORY_LENGTH), validate.Regexp(REPOSITORY_RE, error="invalid repository name")],
    )
    digest = fields.Str(load_default=None, allow_none=True)
    tag = fields.Str(load_default=None, allow_none=True)
    mediaType = fields.Str(load_default=None, allow_none=True)
    size = fields.Int(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0))


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.Str(required=True, validate=validate.Regexp(ID_RE, error="id must be 1 to 200 printable ASCII characters"))
    timestamp = Timestamp(required=True)
    action = fields.Str(required=True, validate=validate.OneOf(["push", "delete"]))
    target = fields.Nested(TargetSchema, required=True)

    @validates_schema
    def _check_reference(self, data, **kwargs):
        target = data.get("target") or {}
        # Distribution v3 sends "" for absent descriptor fields (its ``notifications/event.go``).
        digest, tag = target.get("digest") or None, target.get("tag") or None
        if digest is not None and not DIGEST_RE.match(digest):
            raise ValidationError("digest must be sha256:<64 hex> or sha512:<128 hex>", "target")
        if tag is not None and not TAG_RE.match(tag):
            raise ValidationError("invalid tag", "target")
        if data.get("action") == "push" and digest is None:
            raise ValidationError("a push needs target.digest", "target")
        if data.get("action") == "delete" and digest is None and tag is None:
            raise ValidationError("a delete needs target.digest or target.tag", "target")


_schema = EventSchema()


@dataclass(frozen=True)
class Event:
    """A manifest push or delete, validated."""

    id: str
    timestamp: datetime
    action: str
    repository: str
    digest: str | None
    tag: str | None

    @classmethod
    def load(cls, raw: object) -> "Event":
        """Validate one raw event; raises ``ValidationError`` with the reasons."""
        if not isinstance(raw, dict):
            raise ValidationError("event must be a JSON object")
        data = _schema.load(raw)
        target = data["target"]
        return cls(
            id=data["id"],
            timestamp=data["timestamp"],
            action=data["action"],
            repository=target["repository"],
            digest=target.get("digest") or None,
            tag=target.get("tag") or None,
        )

    def payload(self) -> dict:
        """The event as queued: only what indexing needs, in the registry's own shape.

        The rest of what the registry sent (request, actor, source) is not
        kept: it is unvalidated, and the worker never reads it.
        """
        target = {"repository": self.repository}
        if self.digest:
            target["digest"] = self.digest
        if self.tag:
            target["tag"] = self.tag
        return {"id": self.id, "timestamp": self.timestamp.isoformat(), "action": self.action, "target": target}


def is_relevant(raw: object) -> bool:
    """Whether the indexer wants this event at all (before validating it).

    Pulls and mounts never change the catalog, and blob pushes carry
    ``application/octet-stream`` (Distribution's blob writer default); they are
    dropped quietly. Everything else that claims to be a push or delete is
    kept, and if it is malformed the receiver parks it with the reason rather
    than dropping it.
    """
    if not isinstance(raw, dict):
        return True
    action = raw.get("action")
    if action in ("pull", "mount"):
        return False
    target = raw.get("target")
    media_type = target.get("mediaType") if isinstance(target, dict) else None
    return not (action == "push" and isinstance(media_type, str) and media_type.split(";")[0].strip() == BLOB)


def identity(raw: object) -> tuple[str | None, str | None]:
    """The id and repository a raw event claims, where they are strings: what a dead letter is filed under.

    Read without validating, for events that may be malformed or not events at all.
    """
    target = raw.get("target") if isinstance(raw, dict) else None
    return _string_at(raw, "id"), _string_at(target, "repository")


def _string_at(raw: object, key: str) -> str | None:
    value = raw.get(key) if isinstance(raw, dict) else None
    return value[:MAX_REPOSITORY_LENGTH] if isinstance(value, str) else None


def describe(error: ValidationError) -> str:
    """A one-line reason for a dead letter."""
    messages = error.messages
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in messages.items())
    return _flatten(messages)


def _flatten(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flatten(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class DeadLetter:
    """An event parked for an operator (``ocicat dlq``), with the reason and where it was parked."""

    payload: object
    reason: str
    stage: str  # "receiver" (malformed event) or "worker" (failed processing)
    event_id: str | None = None
    repository: str | None = None
    attempts: int = 0


class Publisher(Protocol):
    """Where the receiver puts what it kept: the bus (indexer.bus), which the command line wires in."""

    def publish(self, events: list[Event], parked: list[DeadLetter]) -> int:
        """Make ``events`` durable and park ``parked``; how many events were new. Raises if nothing could be stored."""

    def ready(self) -> None:
        """Raise unless events can be published now (for /readyz)."""
