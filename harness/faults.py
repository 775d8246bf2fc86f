"""Faults on purpose: an HTTP proxy in front of a registry that fails a share of the requests."""

from __future__ import annotations

import http.server
import random
import socket
import threading
import time

import requests


class FaultyProxy:
    """An HTTP proxy on a loopback port in front of a registry that fails a share of the requests on purpose:
    a 503, a stall before answering, or a connection cut in the middle of the body (``kinds``), chosen at random."""

    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}

    def __init__(self, upstream: str, fault_rate: float = 0.2, stall_seconds: float = 1.5, seed: int = 8,
                 kinds: tuple[str, ...] = ("error", "stall", "cut")):
        self.upstream = upstream
        self.counts = {"forwarded": 0, "error": 0, "stall": 0, "cut": 0}
        rng, lock, local, proxy = random.Random(seed), threading.Lock(), threading.local(), self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self):
                with lock:
                    roll = rng.random()
                fault = kinds[int(roll / fault_rate * len(kinds))] if roll < fault_rate else "forwarded"
                with lock:
                    proxy.counts[fault] += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fault == "error":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "stall":
                    time.sleep(stall_seconds)
                if not hasattr(local, "session"):
                    local.session = requests.Session()
                    local.session.trust_env = False
                headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP_BY_HOP | {"host"}}
                upstream = local.session.request(self.command, proxy.upstream + self.path, headers=headers, data=body,
                                                 allow_redirects=False, timeout=30)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in self.HOP_BY_HOP:
                        self.send_header(key, value)
                content = upstream.content
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault == "cut" and content:
                    self.wfile.write(content[: len(content) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(content)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _relay
            HOP_BY_HOP = FaultyProxy.HOP_BY_HOP

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
