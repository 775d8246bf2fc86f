"""Webhook deliveries' pure pieces: the SSRF guard's verdicts, the retry schedule, secrets, the Slack line."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from indexer.delivery.render import cloudevent, slack_text
from indexer.delivery.send import MAX_BACKOFF, next_attempt
from ocicat.outbound import Guard, Refused
from ocicat.subscriptions import ROTATION_OVERLAP, new_secret, signing_secrets

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/hook", "private"),
    ("http://192.168.1.20/hook", "private"),
    ("http://100.64.0.1/hook", "private or reserved"),  # carrier-grade NAT, shared address space
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # an IPv4-mapped IPv6 address is its IPv4 address
    ("http://0.0.0.0/hook", "private or reserved"),
    ("http://localhost:8080/hook", "loopback"),
])
def test_internal_addresses_are_refused_by_default(url, reason):
    with pytest.raises(Refused, match=reason):
        Guard().check_url(url)


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/", "http:// or https://"),
    ("https://user:pw@example.com/", "credentials"),
    ("https:///nohost", "http:// or https://"),
    ("http://nonexistent.invalid/hook", "does not resolve"),
])
def test_what_is_no_plain_http_url_is_refused(url, message):
    with pytest.raises(Refused, match=message):
        Guard().check_url(url)


def test_the_allow_list_admits_hosts_addresses_and_networks():
    guard = Guard.parse("127.0.0.1, 10.0.0.0/8, hooks.internal")
    guard.check_url("http://127.0.0.1:9000/hook")
    guard.check_url("http://10.20.30.40/hook")
    assert guard.vetted_address("127.0.0.1", 80) == "127.0.0.1"
    with pytest.raises(Refused):
        guard.check_url("http://192.168.0.1/hook")
    with pytest.raises(ValueError, match="not a host name"):
        Guard.parse("10.0.0.0/8, ../etc")


def test_a_public_address_passes():
    assert Guard().vetted_address("93.184.215.14", 443) == "93.184.215.14"


def test_retries_back_off_threefold_with_jitter_up_to_a_cap_and_honour_retry_after():
    rng = random.Random(1)
    delays = [(next_attempt(n, 5.0, None, NOW, rng) - NOW).total_seconds() for n in range(1, 13)]
    assert 4 <= delays[0] <= 6 and 12 <= delays[1] <= 18 and 36 <= delays[2] <= 54
    assert all(d <= MAX_BACKOFF.total_seconds() * 1.2 for d in delays) and delays[-1] >= MAX_BACKOFF.total_seconds() * 0.8
    assert sum(delays) > 12 * 3600  # retried for hours
    assert next_attempt(1, 5.0, "120", NOW) == NOW + timedelta(seconds=120)
    assert next_attempt(1, 5.0, "999999", NOW) == NOW + MAX_BACKOFF


def test_the_previous_secret_signs_beside_the_new_one_for_a_day_after_a_rotation():
    new, old = new_secret(), new_secret()
    assert new.startswith("whsec_") and new != old
    assert signing_secrets([new, old], NOW - timedelta(hours=1), NOW) == [new, old]
    assert signing_secrets([new, old], NOW - ROTATION_OVERLAP - timedelta(seconds=1), NOW) == [new]
    assert signing_secrets([new], None, NOW) == [new]


def test_a_slack_line_links_the_page_and_escapes_what_slack_would_read_as_markup():
    row = {"id": 7, "type": "chart.version.published", "repository": "team/charts/web", "tag": "1.0.0",
           "digest": "sha256:1", "occurred_at": NOW,
           "data": {"repository": "team/charts/web", "digest": "sha256:1",
                    "chart": {"name": "<web>&co", "version": "1.0.0"}}}
    text = slack_text(cloudevent(row, "https://cat.example"))
    assert text == ("<https://cat.example/ui/charts/team/charts/web/1.0.0|"
                    "chart.version.published: &lt;web&gt;&amp;co 1.0.0>")
