"""The Redis broker is found through the plugin registry like any plugin."""

from __future__ import annotations

import redis
from redis_helpers import FAR, Q, req

from taskq_core.plugins import get_broker_entry, make_broker
from taskq_redis import RedisBroker


def test_registered_for_name_and_schemes() -> None:
    """The plugin registers "redis" for redis://, rediss:// and unix://, with
    the host/port/password/db options (password also from the environment)."""
    entry = get_broker_entry("redis")
    assert entry.name == "redis"
    assert entry.schemes == ("redis", "rediss", "unix")
    assert entry.distribution == "taskq-redis"
    assert get_broker_entry("rediss://example:6380/0") == entry
    assert get_broker_entry("unix:///tmp/redis.sock") == entry
    options = {param.name: param for param in entry.cli_options}
    assert set(options) == {"host", "port", "password", "db"}
    assert options["password"].envvar == "TASKQ_REDIS_PASSWORD"
    assert list(options["host"].opts) == ["-h", "--host"]


def test_make_broker_from_url(redis_url: str, redis_client: redis.Redis) -> None:
    """make_broker("redis://...") builds a working RedisBroker."""
    broker = make_broker(redis_url, prefix="viaurl")
    try:
        assert isinstance(broker, RedisBroker)
        broker.enqueue(req("a"))
        assert [t.id for t in broker.pop(Q, 1, "w1", FAR)] == ["a"]
    finally:
        broker.close()


def test_make_broker_from_cli_style_options(redis_url: str, redis_client: redis.Redis) -> None:
    """make_broker("redis", host=, port=, db=, password=None) uses them, as
    `taskq worker --broker redis -h HOST -p PORT -n DB` does."""
    port = redis_client.connection_pool.connection_kwargs["port"]
    broker = make_broker("redis", host="127.0.0.1", port=port, db=2, password=None)
    try:
        assert isinstance(broker, RedisBroker)
        broker.enqueue(req("a"))
        assert redis.Redis(port=port, db=2).exists("taskq:roots") == 1
    finally:
        broker.close()
