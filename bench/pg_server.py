"""A private PostgreSQL server for the benchmark, started and stopped by it.

``initdb`` makes a cluster in a temporary directory, ``pg_ctl`` starts it on
a free loopback port (never the default 5432) with no Unix socket, so no
client can reach it by accident and it cannot be mistaken for a shared
server; ``pg_ctl stop`` and the removal of the directory end it. The
binaries are those in the directory ``pg_config --bindir`` names, else the
ones on ``PATH``.

PostgreSQL refuses to run as root: run as root, the server runs as the
``postgres`` user when there is one, else ``nobody`` (its directory is given
to that user). Clients connect over TCP as the cluster's superuser
``bench``, with ``trust`` authentication (the server listens on 127.0.0.1
only and lives for one run).

The server keeps PostgreSQL's durability (``fsync`` on) except that a commit
does not wait for its WAL to reach the disk (``synchronous_commit = off``): a
crash of the machine can lose the last commits, never corrupt the data. That
is the guarantee of the SQLite broker's default (``synchronous = normal`` in
WAL mode), and it keeps the figures from measuring the disk of the machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "find_bindir", "launch", "start_postgres_server"]

_DEFAULT_PORT = 5432
SUPERUSER = "bench"
#: server settings beyond initdb's defaults (see the module's docstring)
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "synchronous_commit": "off",
    "max_connections": "200",
    "logging_collector": "off",
}


def find_bindir() -> str | None:
    """The directory of ``initdb``, ``pg_ctl`` and ``psql``: ``pg_config
    --bindir`` first, then the directory of ``pg_ctl`` on ``PATH``."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(os.path.realpath(on_path)).parent))
    for directory in candidates:
        if all(os.access(os.path.join(directory, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return directory
    return None


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port != _DEFAULT_PORT:
            return port


def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as: None (the current one) unless root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and there is no postgres or nobody user to run as")


@dataclass
class PostgresServer:
    """A running private server."""

    bindir: str
    directory: str
    port: int
    user: pwd.struct_passwd | None

    @property
    def data(self) -> str:
        return os.path.join(self.directory, "data")

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, "server.log")

    def url(self, database: str) -> str:
        """``postgresql://`` URL of ``database`` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _as_server_user(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        kwargs = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.directory,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql`` (no client library needed here)."""
        psql = os.path.join(self.bindir, "psql")
        where = ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database]
        out = subprocess.run(
            [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *where, "-c", statement],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        )
        if out.returncode:
            raise RuntimeError(f"psql failed on {statement!r}: {out.stderr.strip()}")
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def version(self) -> str:
        return self.sql("SHOW server_version")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """``pg_ctl stop`` (fast: open sessions are ended), then remove the directory."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._as_server_user(
                [os.path.join(self.bindir, "pg_ctl"), "stop", "-D", self.data, "-m", "fast", "-w"]
            )
        shutil.rmtree(self.directory, ignore_errors=True)


def launch(bindir: str) -> PostgresServer:
    """Make a cluster and start it; the caller stops it (:meth:`PostgresServer.stop`)."""
    user = _server_user()
    directory = tempfile.mkdtemp(prefix="taskq-bench-pg-")
    if user is not None:
        os.chown(directory, user.pw_uid, user.pw_gid)
    server = PostgresServer(bindir, directory, 0, user)
    initdb = [os.path.join(bindir, "initdb"), "-D", server.data, "-U", SUPERUSER]
    made = server._as_server_user(
        [*initdb, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]
    )
    if made.returncode:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {made.stderr.strip() or made.stdout.strip()}")
    # pg_ctl hands -o to a shell: '' is an empty setting (no Unix socket)
    settings = " ".join(f"-c {k}={v or repr('')}" for k, v in SETTINGS.items())
    pg_ctl = [os.path.join(bindir, "pg_ctl"), "start", "-D", server.data, "-w", "-t", "60"]
    last_error = ""
    for _attempt in range(5):  # a port taken between choosing and binding: another one
        server.port = _free_port()
        options = f"-c port={server.port} {settings}"
        started = server._as_server_user([*pg_ctl, "-l", server.log_path, "-o", options])
        if started.returncode == 0:
            return server
        last_error = f"{started.stdout}{started.stderr}\n{server.log()}"
    shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError(f"the PostgreSQL server did not start: {last_error.strip()}")


@contextlib.contextmanager
def start_postgres_server(bindir: str | None = None) -> Iterator[PostgresServer]:
    """Run a private server for the duration of the ``with`` block."""
    found = bindir or find_bindir()
    if found is None:
        raise FileNotFoundError("no PostgreSQL server binaries (pg_config --bindir, or PATH)")
    server = launch(found)
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":  # a quick check: start, create a database, stop
    with start_postgres_server() as pg:
        print(pg.version(), pg.create_database("check"), time.strftime("%X"))
