"""The webhook receiver against hostile and broken input, on the running service."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import requests

from harness.events import envelope, push_event
from harness.oci import push_image
from harness.processes import wait_until


def _queued_or_done(stack, event_id):
    with stack.db.transaction() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM event_queue WHERE event_id = %(id)s)"
            " + (SELECT count(*) FROM processed_events WHERE event_id = %(id)s) AS n",
            {"id": event_id},
        )
        return cur.fetchone()["n"]


def _dead_letters(stack, event_id):
    with stack.db.transaction() as cur:
        cur.execute("SELECT stage, reason, payload FROM dead_letters WHERE event_id = %s", (event_id,))
        return cur.fetchall()


def _digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def test_wrong_or_missing_secret_is_refused_and_nothing_is_queued(stack):
    event_id = str(uuid.uuid4())
    body = envelope(push_event(event_id, "x/y", _digest(event_id)))
    for secret in ("wrong", "", stack.secret + "x", stack.secret[:-1]):
        response = stack.post_events(body, secret=secret)
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/problem+json"
    no_header = requests.post(f"{stack.api}/api/v1/events", data=body, timeout=5)
    assert no_header.status_code == 401
    basic = stack.post_events(body, secret="x", Authorization=f"Basic {stack.secret}")
    assert basic.status_code == 401
    assert _queued_or_done(stack, event_id) == 0


def test_every_configured_secret_is_accepted_for_rotation(stack):
    event_id = str(uuid.uuid4())
    response = stack.post_events(envelope(push_event(event_id, "rotation/x", _digest(event_id))), secret="old-secret")
    assert response.status_code == 200


def test_garbage_and_non_envelopes_get_400(stack):
    for body in (b"not json", b"\xff\xfe\x00", b"[]", b'{"events": {}}', b'"events"', b"{}", b'{"events": null}'):
        response = stack.post_events(body)
        assert response.status_code == 400, body
        assert response.json()["status"] == 400
    assert stack.get("/healthz").status_code == 200


def test_oversize_bodies_get_413_with_or_without_content_length(stack):
    big = envelope(push_event("big", "x/y", _digest("big"))) + b" " * (1024 * 1024)
    assert stack.post_events(big).status_code == 413

    def chunks():
        yield b'{"events": ['
        for _ in range(2048):
            yield b" " * 1024
        yield b"]}"

    chunked = requests.post(f"{stack.api}/api/v1/events", data=chunks(),
                            headers={"Authorization": f"Bearer {stack.secret}"}, timeout=10)
    assert chunked.status_code == 413
    assert stack.get("/healthz").status_code == 200


def test_half_bad_envelope_parks_the_bad_and_indexes_the_good(stack):
    repository = f"half-{uuid.uuid4().hex[:8]}/app"
    digest = push_image(stack.registry.url, repository, "untracked-by-tag")
    good_id, bad_ids = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(5)]
    events = [
        push_event(good_id, repository, digest, tag="v9"),
        push_event(bad_ids[0], repository, "sha256:nothex"),
        push_event(bad_ids[1], "UPPER/Case", digest),
        push_event(bad_ids[2], repository, digest, timestamp="yesterday"),
        {**push_event(bad_ids[3], repository, digest), "action": "rename"},
        {"id": bad_ids[4], "timestamp": "2026-05-04T10:12:01Z", "action": "delete", "target": {"repository": repository}},
        "not even an object",
        {"id": "pull-1", "action": "pull", "target": {"mediaType": "whatever"}},
        {**push_event("blob-1", repository, digest), "target": {"mediaType": "application/octet-stream",
                                                               "digest": digest, "repository": repository}},
    ]
    response = stack.post_events(envelope(*events))
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "new": 1, "parked": 6, "ignored": 2}

    reasons = {bad: _dead_letters(stack, bad) for bad in bad_ids}
    assert all(len(rows) == 1 and rows[0]["stage"] == "receiver" for rows in reasons.values()), reasons
    assert "digest" in reasons[bad_ids[0]][0]["reason"]
    assert "repository" in reasons[bad_ids[1]][0]["reason"]
    assert "timestamp" in reasons[bad_ids[2]][0]["reason"]
    assert "action" in reasons[bad_ids[3]][0]["reason"]
    assert "delete needs" in reasons[bad_ids[4]][0]["reason"]
    assert reasons[bad_ids[2]][0]["payload"]["timestamp"] == "yesterday"  # kept as sent
    with stack.db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM dead_letters WHERE payload = %s::jsonb", (json.dumps("not even an object"),))
        assert cur.fetchone()["n"] >= 1

    tag = wait_until(lambda: stack.tags(repository).get("v9"), timeout=60, what="the good event to be indexed")
    assert tag["digest"] == digest


def test_redelivered_envelope_is_queued_once(stack):
    event_id = str(uuid.uuid4())
    body = envelope(push_event(event_id, "dup/x", _digest(event_id)))
    answers = [stack.post_events(body).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    wait_until(lambda: _queued_or_done(stack, event_id) == 1, timeout=60, what="one queue entry or processed record")


def test_event_url_is_never_fetched(stack):
    """The worker builds URLs from its configured registry; the event's url points elsewhere and is ignored."""
    repository = f"ssrf-{uuid.uuid4().hex[:8]}/app"
    digest = push_image(stack.registry.url, repository, "v1")
    event = push_event(str(uuid.uuid4()), repository, digest, tag="copy")
    event["target"]["url"] = "http://169.254.169.254/latest/meta-data/"
    assert stack.post_events(envelope(event)).status_code == 200
    wait_until(lambda: "copy" in stack.tags(repository), timeout=60, what="indexing from the configured registry")


def test_nul_characters_and_deep_nesting_never_block_the_registry(stack):
    """PostgreSQL cannot store NUL; an envelope carrying one must still be answered 200, not 503 forever."""
    repository = f"nul-{uuid.uuid4().hex[:8]}/app"
    digest = push_image(stack.registry.url, repository, "v1")
    good = push_event(str(uuid.uuid4()), repository, digest, tag="nul-ok")
    good["request"]["useragent"] = "evil\u0000agent"
    bad_id = {**push_event("nul\u0000id", repository, digest), "actor": {"name": "\u0000"}}
    bad_time = push_event(str(uuid.uuid4()), repository, digest, timestamp="2026\u0000")
    ancient = push_event(str(uuid.uuid4()), repository, digest, timestamp="0001-01-01T00:00:00+14:00")
    nested = push_event(str(uuid.uuid4()), "bad name", digest)
    nested["request"]["deep"] = json.loads("[" * 600 + "]" * 600)
    weird = json.loads('{"id": "%s", "action": "push", "timestamp": NaN, "x": Infinity, "\\udc00": "\\ud800"}'
                       % uuid.uuid4())
    body = json.dumps({"events": [good, bad_id, bad_time, ancient, nested, weird]}).encode()
    for _ in range(2):  # a redelivery parks nothing twice
        response = stack.post_events(body)
        assert response.status_code == 200, response.text
        assert response.json()["parked"] == 5
    assert "timestamp" in _dead_letters(stack, ancient["id"])[0]["reason"]
    assert len(_dead_letters(stack, nested["id"])) == 1 and len(_dead_letters(stack, weird["id"])) == 1
    assert _dead_letters(stack, bad_time["id"])[0]["payload"]["timestamp"] == "2026\ufffd"
    wait_until(lambda: "nul-ok" in stack.tags(repository), timeout=60, what="the good event despite the NULs")

    deep = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    assert stack.post_events(deep).status_code == 400
    assert stack.get("/healthz").status_code == 200


def test_an_event_dated_ahead_of_ocicats_clock_cannot_pin_a_tag(stack):
    """A registry whose clock runs 3 hours fast sent a push: it used to win over every later event and every
    resync. Now it is dated when ocicat received it, so what the registry does next, and a crawl, win."""
    repository = f"clock-{uuid.uuid4().hex[:8]}/app"
    current = push_image(stack.registry.url, repository, "v1", seed="current")
    forged = push_image(stack.registry.url, repository, "other", seed="forged")
    wait_until(lambda: stack.tags(repository).keys() == {"v1", "other"}, timeout=60, what="both tags indexed")
    ahead = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()
    assert stack.post_events(envelope(push_event(str(uuid.uuid4()), repository, forged, "v1", timestamp=ahead))).ok
    wait_until(lambda: stack.tags(repository)["v1"]["digest"] == forged, timeout=60, what="the early event applied")

    assert push_image(stack.registry.url, repository, "v1", seed="current") == current  # v1 moves back, for real
    wait_until(lambda: stack.tags(repository)["v1"]["digest"] == current, timeout=60,
               what="the registry's later push to win over the event dated ahead")
    metrics = requests.get(f"{stack.api}/metrics", timeout=10).text
    assert re.search(r"^ocicat_events_clock_ahead_total [1-9]", metrics, re.M)
