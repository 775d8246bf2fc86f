"""Subscriptions, webhook deliveries and feeds against real receivers: real Helm pushes to a registry notifying a real
`ocicat serve` on a private catalog, deliveries checked with the Standard Webhooks library's own verifier and the
CloudEvents SDK's own parser, permissions at delivery time, retries, and the SSRF guard."""

from __future__ import annotations

import base64
import json
import uuid
from xml.etree import ElementTree

import pytest
import requests
from cloudevents.core.bindings import http as cloudevents_http
from cloudevents.core.formats.json import JSONFormat
from standardwebhooks.webhooks import Webhook

from harness.helm import helm_push, make_chart
from harness.oci import push_chart, push_image
from harness.processes import wait_until
from harness.webhooks import Receiver
from ocicat import accounts

from .probes import catalog_events
from .stack import start_stack, stop_stack


@pytest.fixture(scope="module")
def hooks(make_database, tmp_path_factory):
    """A private catalog whose deliveries may go to loopback (the tests' receivers), retrying quickly."""
    running = start_stack(make_database, tmp_path_factory.mktemp("hooks"), OCICAT_DELIVERY_ALLOW="127.0.0.1",
                          OCICAT_DELIVERY_BACKOFF_SECONDS="0.3", OCICAT_DELIVERY_ATTEMPTS="4")
    yield running
    stop_stack(running)


@pytest.fixture
def receiver():
    hook = Receiver(stall_seconds=12)
    yield hook
    hook.close()


def _user(stack, role_paths: dict[str, str] | None = None, admin: bool = False) -> tuple[str, dict]:
    """A new user with roles on paths, and the headers of their API token."""
    name, token = stack.user(role_paths, admin)
    return name, {"Authorization": f"Bearer {token}"}


def _subscribe(stack, headers: dict, url: str, **fields) -> dict:
    response = requests.post(f"{stack.api}/api/v1/subscriptions", json={"name": uuid.uuid4().hex, "url": url, **fields},
                             headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def _events(receiver: Receiver, count: int, what: str) -> list:
    """The first ``count`` deliveries, parsed by the CloudEvents SDK after their signature checked out."""
    return wait_until(lambda: len(receiver.requests()) >= count and receiver.requests()[:count], timeout=60,
                      what=f"{count} deliveries: {what}")


def _parse(request, secret: str):
    Webhook(secret).verify(request.body, request.headers)  # raises unless the signature is right
    message = cloudevents_http.HTTPMessage(request.headers, request.body)
    return cloudevents_http.from_http(message, JSONFormat())


def test_a_helm_push_reaches_a_subscriber_signed_as_a_cloudevent_with_the_chart(hooks, receiver, tmp_path):
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    _, alice = _user(hooks, {namespace: "reporter"})
    subscription = _subscribe(hooks, alice, receiver.url, filters={"namespace": namespace,
                                                                   "event_types": ["chart.version.published"]})
    assert subscription["secret"].startswith("whsec_") and subscription["format"] == "cloudevents"
    helm_push(make_chart(tmp_path, "webapp", "1.3.0", app_version="2.1.0", description="Web app"), hooks.registry,
              f"{namespace}/charts")

    [request] = _events(receiver, 1, "the chart's publication")
    event = _parse(request, subscription["secret"])
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert event.get_type() == "dev.ocicat.chart.version.published"
    assert event.get_source() == hooks.api
    data = event.get_data()
    assert data["repository"] == f"{namespace}/charts/webapp"
    assert data["chart"] == {"name": "webapp", "version": "1.3.0", "app_version": "2.1.0", "description": "Web app",
                             "upgrade": None}
    assert requests.get(data["links"]["api"], headers=alice, timeout=10).status_code == 200

    log = wait_until(lambda: (items := requests.get(f"{hooks.api}/api/v1/subscriptions/{subscription['id']}/deliveries",
                                                    headers=alice, timeout=10).json()["items"])
                     and items[0]["state"] == "delivered" and items, timeout=30, what="the delivery logged")
    assert log[0]["last_status"] == 200 and log[0]["latency_ms"] > 0 and log[0]["event_type"] == "chart.version.published"
    assert log[0]["response_excerpt"] == "answered 200"


def test_moves_and_deletes_arrive_in_order_in_binary_mode_and_as_slack_messages(hooks, tmp_path):
    repository = f"apps-{uuid.uuid4().hex[:8]}/api"
    _, admin = _user(hooks, admin=True)
    binary, slack = Receiver(), Receiver()
    try:
        subscription = _subscribe(hooks, admin, binary.url, format="cloudevents-binary",
                                  filters={"repository": repository})
        _subscribe(hooks, admin, slack.url, format="slack", filters={"repository": repository,
                                                                     "event_types": ["tag.moved"]})
        first = push_image(hooks.registry.url, repository, "v1", seed="a")
        _events(binary, 1, "the first push")
        second = push_image(hooks.registry.url, repository, "v1", seed="b")
        _events(binary, 3, "the second push and the move")
        assert requests.delete(f"{hooks.registry.url}/v2/{repository}/manifests/{second}", timeout=10).status_code == 202
        received = _events(binary, 5, "the delete")
        events = [_parse(r, subscription["secret"]) for r in received]
        assert [(e.get_type().removeprefix("dev.ocicat."), e.get_subject()) for e in events] == [
            ("image.published", f"{repository}:v1"), ("image.published", f"{repository}:v1"),
            ("tag.moved", f"{repository}:v1"), ("tag.deleted", f"{repository}:v1"),
            ("manifest.deleted", f"{repository}@{second}")]
        assert received[0].headers["ce-type"] == "dev.ocicat.image.published"  # binary mode: attributes as headers
        assert events[2].get_data()["previous_digest"] == first and events[2].get_data()["digest"] == second
        [message] = _events(slack, 1, "the slack message")
        text = json.loads(message.body)["text"]
        assert text.startswith(f"<{hooks.api}/ui/repositories/{repository}/-/manifests/{second}|tag.moved: ")
    finally:
        binary.close()
        slack.close()


def test_deliveries_follow_the_owners_permissions_at_delivery_time(hooks, receiver):
    namespace = f"private-{uuid.uuid4().hex[:8]}"
    alice, alice_headers = _user(hooks, {namespace: "reporter"})
    _, bob = _user(hooks)  # no role: the namespace is private to him
    bob_hook = Receiver()
    try:
        alices = _subscribe(hooks, alice_headers, receiver.url, filters={"namespace": namespace})
        bobs = _subscribe(hooks, bob, bob_hook.url, filters={"namespace": namespace})
        push_image(hooks.registry.url, f"{namespace}/app", "v1", seed="1")
        _events(receiver, 1, "alice's first event")
        with hooks.db.transaction() as cur:
            accounts.revoke(cur, alice, namespace)
        push_image(hooks.registry.url, f"{namespace}/app", "v2", seed="2")

        def skipped(subscription: dict, headers: dict, count: int) -> list:
            return wait_until(lambda: len(items := [d for d in requests.get(
                f"{hooks.api}/api/v1/subscriptions/{subscription['id']}/deliveries", headers=headers, timeout=10
            ).json()["items"] if d["state"] == "skipped"]) >= count and items, timeout=30, what="skipped deliveries")

        assert "may not see" in skipped(alices, alice_headers, 1)[0]["last_error"]  # revoked before the second push
        assert len(skipped(bobs, bob, 2)) == 2
        assert bob_hook.requests() == []  # never a request for what bob may not see
        assert len(receiver.requests()) == 1
    finally:
        bob_hook.close()


def test_a_failing_target_is_retried_with_backoff_while_other_subscriptions_are_delivered_on_time(hooks):
    repository = f"flaky-{uuid.uuid4().hex[:8]}/app"
    _, admin = _user(hooks, admin=True)
    flaky, healthy = Receiver(stall_seconds=12), Receiver()
    flaky.answers.extend([500, "stall", "close"])  # then 200, at the last of the 4 attempts the stack allows
    try:
        _subscribe(hooks, admin, flaky.url, filters={"repository": repository})
        _subscribe(hooks, admin, healthy.url, filters={"repository": repository})
        push_image(hooks.registry.url, repository, "v1")
        [on_time] = _events(healthy, 1, "the healthy target's delivery")
        attempts = _events(flaky, 4, "the flaky target's retries, then success")
        assert on_time.at < attempts[2].at  # delivered while the flaky target was still failing
        assert len({a.headers["webhook-id"] for a in attempts}) == 1  # the same message, retried
        # (the backoff schedule itself is tests/unit/test_deliveries.py's: no timing is asserted here)
    finally:
        flaky.close()
        healthy.close()


def test_a_ping_reaches_the_target_signed_with_the_subscribers_own_secret(hooks, receiver):
    _, admin = _user(hooks, admin=True)
    own = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes....").decode()
    subscription = _subscribe(hooks, admin, receiver.url, secret=own)
    assert subscription["secret"] == own
    answer = requests.post(f"{hooks.api}/api/v1/subscriptions/{subscription['id']}/ping", headers=admin, timeout=10)
    assert answer.status_code == 202
    pings = wait_until(lambda: [r for r in receiver.requests() if b"dev.ocicat.ping" in r.body], timeout=30,
                       what="the ping")
    assert _parse(pings[0], subscription["secret"]).get_type() == "dev.ocicat.ping"


def test_a_rotated_secret_signs_beside_the_old_one(hooks, receiver):
    _, admin = _user(hooks, admin=True)
    subscription = _subscribe(hooks, admin, receiver.url)
    rotated = requests.post(f"{hooks.api}/api/v1/subscriptions/{subscription['id']}/rotate-secret", headers=admin,
                            timeout=10).json()
    assert rotated["secret"] != subscription["secret"]
    requests.post(f"{hooks.api}/api/v1/subscriptions/{subscription['id']}/ping", headers=admin, timeout=10)
    [ping] = _events(receiver, 1, "the ping")
    _parse(ping, rotated["secret"])
    _parse(ping, subscription["secret"])  # receivers not yet switched still verify it


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.0.0.1/hook", "http://localhost:{port}/hook", "http://[::1]:{port}/hook"])
def test_a_target_on_an_internal_address_is_refused_without_the_allow_list(stack, receiver, url):
    """The session stack has no OCICAT_DELIVERY_ALLOW: loopback, link-local, private addresses and names resolving
    to them are refused when the subscription is saved, and no request reaches them."""
    _, admin = _user(stack, admin=True)
    target = url.format(port=receiver.url.split(":")[2].split("/")[0])
    response = requests.post(f"{stack.api}/api/v1/subscriptions", json={"name": "internal", "url": target},
                             headers=admin, timeout=30)
    assert response.status_code == 422, response.text
    assert "OCICAT_DELIVERY_ALLOW" in response.json()["detail"]
    assert receiver.requests() == []


def test_subscriptions_are_their_owners(hooks, receiver):
    _, alice = _user(hooks)
    _, mallory = _user(hooks)
    subscription = _subscribe(hooks, alice, receiver.url)
    url = f"{hooks.api}/api/v1/subscriptions/{subscription['id']}"
    assert requests.get(url, headers=mallory, timeout=10).status_code == 404
    assert requests.delete(url, headers=mallory, timeout=10).status_code == 404
    assert requests.get(f"{hooks.api}/api/v1/subscriptions", headers=mallory, timeout=10).json()["items"] == []
    assert requests.get(f"{hooks.api}/api/v1/subscriptions", timeout=10).status_code == 401
    paused = requests.patch(url, json={"paused": True}, headers=alice, timeout=10).json()
    assert paused["paused"] is True and "secret" not in paused
    assert requests.patch(url, json={"url": "ftp://x"}, headers=alice, timeout=10).status_code == 422
    assert requests.patch(url, json={"colour": "red"}, headers=alice, timeout=10).status_code == 400
    assert requests.delete(url, headers=alice, timeout=10).status_code == 204


def test_atom_feeds_of_a_namespace_a_repository_and_a_chart_follow_the_readers_permissions(hooks):
    namespace = f"feeds-{uuid.uuid4().hex[:8]}"
    reader, _ = _user(hooks, {namespace: "reporter"})
    with hooks.db.transaction() as cur:
        _, token = accounts.create_token(cur, reader)
    basic = (reader, token)  # a feed reader's HTTP Basic: the API token as the password
    chart = f"{namespace}/charts/webapp"
    push_chart(hooks.registry.url, chart, "1.0.0", "1.0.0", description="first")
    push_image(hooks.registry.url, f"{namespace}/app", "v1")
    wait_until(lambda: len(catalog_events(hooks.db, chart)) >= 1 and len(catalog_events(hooks.db, f"{namespace}/app")),
               timeout=60, what="the events")

    anonymous = requests.get(f"{hooks.api}/feeds/namespaces/{namespace}", timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(f"{hooks.api}/feeds/repositories/{chart}", auth=("x", "wrong"), timeout=10).status_code == 401
    _, stranger = _user(hooks)
    assert requests.get(f"{hooks.api}/feeds/repositories/{chart}", headers=stranger, timeout=10).status_code == 404

    def entries(path: str) -> list[tuple[str, str]]:
        response = requests.get(f"{hooks.api}/feeds/{path}", auth=basic, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/atom+xml")
        atom = "{http://www.w3.org/2005/Atom}"
        root = ElementTree.fromstring(response.content)
        return [(e.findtext(f"{atom}title"), e.find(f"{atom}link").get("href")) for e in root.iter(f"{atom}entry")]

    assert {title for title, _ in entries(f"namespaces/{namespace}")} == {
        "chart.version.published: webapp 1.0.0", f"image.published: {namespace}/app:v1"}
    assert entries(f"charts/{chart}") == [("chart.version.published: webapp 1.0.0",
                                           f"{hooks.api}/ui/charts/{chart}/1.0.0")]
    assert [title for title, _ in entries(f"repositories/{namespace}/app")] == [f"image.published: {namespace}/app:v1"]


def test_a_paused_subscription_sends_nothing_until_resumed(hooks, receiver):
    _, admin = _user(hooks, admin=True)
    paused = _subscribe(hooks, admin, receiver.url)
    other = Receiver()
    try:
        active = _subscribe(hooks, admin, other.url)
        url = f"{hooks.api}/api/v1/subscriptions"
        assert requests.patch(f"{url}/{paused['id']}", json={"paused": True}, headers=admin, timeout=10).ok
        requests.post(f"{url}/{paused['id']}/ping", headers=admin, timeout=10).raise_for_status()
        requests.post(f"{url}/{active['id']}/ping", headers=admin, timeout=10).raise_for_status()
        _events(other, 1, "the active subscription's ping")  # the deliverer had its chance at both
        assert receiver.requests() == []
        assert requests.patch(f"{url}/{paused['id']}", json={"paused": False}, headers=admin, timeout=10).ok
        _events(receiver, 1, "the ping, once resumed")
    finally:
        other.close()
