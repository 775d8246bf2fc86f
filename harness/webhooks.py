"""A real webhook receiver for tests and benchmarks: an HTTP server on loopback that records what it is sent and
answers as it is told (a status, a stall, a connection closed mid-answer)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.monotonic() when it arrived


class Receiver:
    """Records every POST; ``answers`` is a queue of what to do with the next requests (an int status, "stall"
    to wait ``stall_seconds`` before answering 200, "close" to drop the connection mid-answer); 200 once empty."""

    def __init__(self, stall_seconds: float = 15.0):
        self.received: list[Received] = []
        self.answers: deque = deque()
        self.stall_seconds = stall_seconds
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as any real receiver
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a SIGKILLed worker): nothing was delivered
                    self.close_connection = True
                    return
                with receiver._lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, time.monotonic()))
                    answer = receiver.answers.popleft() if receiver.answers else 200
                if answer == "close":  # headers promise a body that never comes
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.write(b"partial")
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                if answer == "stall":
                    time.sleep(receiver.stall_seconds)
                    answer = 200
                body = f"answered {answer}".encode()
                self.send_response(answer)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
