"""What operators see: Prometheus metrics from every process, JSON logs that name the event, readiness."""

from __future__ import annotations

import json
import re
import uuid

import requests

from harness.kafka import Gate
from harness.oci import push_image
from harness.processes import free_port, wait_until
from ocicat.cli import build_app
from ocicat.config import Config

from .conftest import SERVER_URL
from .stack import start_stack, stop_stack


def _sample(text: str, name: str, **labels) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return 0.0


def test_metrics_cover_every_api_process_and_the_worker_and_logs_are_json_with_the_event(make_database, tmp_path):
    metrics_port = free_port()
    stack = start_stack(make_database, tmp_path, OCICAT_DEFAULT_VISIBILITY="public", OCICAT_LOG_FORMAT="json",
                        OCICAT_API_WORKERS=2, OCICAT_WORKER_METRICS_LISTEN=f"127.0.0.1:{metrics_port}")
    try:
        repository = f"observed-{uuid.uuid4().hex[:8]}/app"
        push_image(stack.registry.url, repository, "v1")
        wait_until(lambda: stack.tags(repository), timeout=60, what="the push indexed")
        for _ in range(20):  # spread over both gunicorn processes
            assert requests.get(f"{stack.api}/readyz", timeout=5).status_code == 200
        assert stack.post_events(b'{"events": []}', secret="wrong").status_code == 401

        api = requests.get(f"{stack.api}/metrics", timeout=10)
        assert api.status_code == 200 and api.headers["Content-Type"].startswith("text/plain")
        # Multiprocess mode: all 20 answers are counted, whichever process answered them and this scrape.
        assert _sample(api.text, "ocicat_api_request_seconds_count", route="/readyz", method="GET") == 20
        assert _sample(api.text, "ocicat_events_received_total", action="push") >= 1
        assert _sample(api.text, "ocicat_events_rejected_total", reason="unauthorized") == 1
        assert "ocicat_queue_depth 0.0" in api.text and "ocicat_dead_letters_open 0.0" in api.text

        worker = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert _sample(worker, "ocicat_index_seconds_count", action="push") >= 1
        assert "ocicat_registry_fetch_errors_total" in worker

        lines = [line for line in stack.server.output().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]  # every line is one JSON object
        handled = [e for e in entries if e.get("repository") == repository and e.get("event_id")]
        assert handled and any("push" in e["message"] for e in handled)
        assert any(e["logger"].startswith("gunicorn") for e in entries)
    finally:
        stop_stack(stack)


def test_readyz_fails_while_the_database_is_unreachable(database_url):
    server = SERVER_URL.rsplit("/", 1)[0].rsplit("@", 1)[1]  # host:port of the test PostgreSQL
    gate = Gate(free_port(), int(server.rsplit(":", 1)[1]))
    gate.open()
    through_gate = re.sub(r"@[^/]+/", f"@127.0.0.1:{gate.port}/", database_url)
    app = build_app(Config(database_url=through_gate))
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        gate.close()
        answer = client.get("/readyz")
        assert answer.status_code == 503 and "database" in answer.json["detail"]
        gate.open()
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=60, what="ready again")
    finally:
        gate.close()
        app.extensions["ocicat"].db.close()


def test_made_up_methods_do_not_add_metric_series(database_url):
    """Each unknown method used to add a histogram series (method="ZZTEST1", ...): unbounded memory for anyone."""
    app = build_app(Config(database_url=database_url))
    client = app.test_client()
    try:
        for n in range(5):
            assert client.open("/nope", method=f"ZZTEST{n}").status_code in (404, 405)
        scraped = client.get("/metrics").get_data(as_text=True)
    finally:
        app.extensions["ocicat"].db.close()
    assert "ZZTEST" not in scraped
    assert re.search(r'ocicat_api_request_seconds_count\{method="other",route="unmatched"\} [1-9]', scraped)
