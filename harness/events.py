"""Registry notifications: envelopes and events as Distribution sends them, and an endpoint that records them."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from datetime import datetime, timezone

from ocicat.oci.media_types import OCI_MANIFEST


def envelope(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def push_event(event_id: str, repository: str, digest: str, tag: str | None = None,
               timestamp: str = "2026-05-04T10:12:01.123456789Z",
               media_type: str = OCI_MANIFEST) -> dict:
    target = {"mediaType": media_type, "digest": digest, "size": 1, "repository": repository,
              "url": f"http://attacker.invalid/v2/{repository}/manifests/{digest}"}
    if tag:
        target["tag"] = tag
    return {"id": event_id, "timestamp": timestamp, "action": "push", "target": target,
            "request": {"id": "r", "method": "PUT", "useragent": "test"}, "actor": {}, "source": {}}


def fresh_push_event(repository: str, digest: str, tag: str | None = None) -> dict:
    """A push event with a new id, stamped now."""
    return push_event(str(uuid.uuid4()), repository, digest, tag=tag, timestamp=datetime.now(timezone.utc).isoformat())


class Recorder:
    """A webhook endpoint that records every envelope a registry sends, in arrival order."""

    def __init__(self):
        self.envelopes: list[bytes] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.envelopes.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [event for body in self.envelopes for event in json.loads(body)["events"]]

    def wait_quiet(self, seconds: float = 0.7, timeout: float = 15.0) -> None:
        """Wait until no envelope has arrived for ``seconds``."""
        deadline = time.monotonic() + timeout
        seen = -1
        while len(self.envelopes) != seen and time.monotonic() < deadline:
            seen = len(self.envelopes)
            time.sleep(seconds)

    def close(self) -> None:
        self.server.shutdown()
