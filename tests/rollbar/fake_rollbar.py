"""A local stand-in for Rollbar's API: records the items POSTed to it.

It answers ``POST /api/1/item/`` the way Rollbar does (``{"err": 0, "result":
{"uuid": ...}}``), optionally after a delay, so the real ``rollbar`` library can
be pointed at it with its ``endpoint`` setting.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from worker_procs import wait_for


class FakeRollbar:
    """An HTTP server on a free loopback port, in a thread."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.items: list[dict[str, Any]] = []
        self.tokens: list[str | None] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with owner._lock:
                    owner.items.append(body)
                    owner.tokens.append(self.headers.get("X-Rollbar-Access-Token"))
                    owner.paths.append(self.path)
                if owner.delay:
                    time.sleep(owner.delay)
                uuid = body.get("data", {}).get("uuid")
                reply = json.dumps({"err": 0, "result": {"id": None, "uuid": uuid}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """What to give Rollbar as its ``endpoint``."""
        return f"http://127.0.0.1:{self.port}/api/1/"

    @property
    def data(self) -> list[dict[str, Any]]:
        """The ``data`` part of every item received, in order."""
        with self._lock:
            return [item["data"] for item in self.items]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` items arrived; return them all."""
        items: list[dict[str, Any]] = wait_for(
            lambda: len(self.data) >= count and self.data, timeout, f"{count} items"
        )
        return items

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def unused_endpoint() -> str:
    """An endpoint nobody listens on: every request is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/1/"
