"""Registry notification events: which are kept, what a valid one is, and how a bad one is filed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from harness.events import push_event
from ocicat.events import Event, describe, identity, is_relevant

DIGEST = "sha256:" + "a" * 64


def test_a_push_keeps_what_indexing_needs_in_the_registrys_shape():
    raw = push_event("e1", "team/app", DIGEST, "v1", timestamp="2026-05-04T10:12:01.123456789+02:00")
    event = Event.load(raw)
    assert (event.id, event.action, event.repository, event.digest, event.tag) == ("e1", "push", "team/app", DIGEST, "v1")
    assert event.timestamp == datetime(2026, 5, 4, 8, 12, 1, 123456, tzinfo=timezone.utc)  # nanoseconds cut, in UTC
    assert event.payload() == {"id": "e1", "timestamp": "2026-05-04T08:12:01.123456+00:00", "action": "push",
                               "target": {"repository": "team/app", "digest": DIGEST, "tag": "v1"}}
    assert Event.load(event.payload()) == event  # what the bus stores reads back the same


def test_a_delete_by_tag_and_distribution_v3s_empty_strings():
    raw = {"id": "e2", "timestamp": "2026-05-04T10:12:01Z", "action": "delete",
           "target": {"repository": "team/app", "digest": "", "tag": "v1", "mediaType": ""}}
    event = Event.load(raw)
    assert event.digest is None and event.tag == "v1"


@pytest.mark.parametrize("change, reason", [
    ({"target": {"repository": "Team/App", "digest": DIGEST}}, "invalid repository name"),
    ({"target": {"repository": "team/app", "digest": "sha256:../../_catalog"}}, "digest must be"),
    ({"target": {"repository": "team/app"}}, "a push needs target.digest"),
    ({"target": {"repository": "team/app", "digest": DIGEST, "tag": "-bad"}}, "invalid tag"),
    ({"timestamp": "9999-01-01T00:00:00Z"}, "timestamp out of range"),
    ({"timestamp": "yesterday"}, "not an RFC 3339 timestamp"),
    ({"id": "has space"}, "printable ASCII"),
    ({"action": "pull"}, "Must be one of"),
])
def test_a_malformed_event_is_refused_with_a_reason_a_person_can_act_on(change, reason):
    raw = {**push_event("e3", "team/app", DIGEST), **change}
    with pytest.raises(ValidationError) as caught:
        Event.load(raw)
    assert reason in describe(caught.value)


def test_pulls_mounts_and_blob_pushes_are_of_no_interest_and_everything_else_is_kept():
    assert not is_relevant({"action": "pull"}) and not is_relevant({"action": "mount"})
    assert not is_relevant({"action": "push", "target": {"mediaType": "application/octet-stream; charset=x"}})
    assert is_relevant(push_event("e4", "team/app", DIGEST))
    assert is_relevant("not even an object")  # kept, to be parked with its reason


def test_a_malformed_event_is_filed_under_the_id_and_repository_it_claims():
    assert identity({"id": "e5", "target": {"repository": "x" * 300}}) == ("e5", "x" * 255)
    assert identity({"id": 5, "target": "nope"}) == (None, None)
    assert identity(["not", "an", "event"]) == (None, None)
