"""The hot path's commands sent straight on a pooled connection (``_wire``):
the same bytes redis-py would send, the same replies, errors read in turn, and
a failed connection never handed out again."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.exceptions

from taskq_redis._wire import DirectSender, pack_command


@pytest.mark.parametrize(
    "args",
    [
        ("k", "v"),
        (b"\x00\xffbytes", "texté", 7, -3, 2.5, 1e-7, 0),
        (),
    ],
)
def test_requests_are_the_bytes_redis_py_sends(args: tuple[Any, ...]) -> None:
    connection = redis.Connection()
    assert pack_command(b"SADD", args) == b"".join(connection.pack_command("SADD", *args))


@pytest.mark.parametrize("bad", [True, None, object(), [1]])
def test_an_argument_redis_cannot_take_is_refused(bad: Any) -> None:
    with pytest.raises(redis.exceptions.DataError, match="give bytes, str, int or float"):
        pack_command(b"SADD", ["k", bad])


def test_replies_and_error_replies_come_back_in_order(redis_client: Any) -> None:
    sender = DirectSender(redis_client)
    sha = redis_client.script_load("return {KEYS[1], ARGV[1]}")
    replies = sender.send(
        [
            (b"SADD", ("direct-set", "a", "b")),
            (b"EVALSHA", ("0" * 40, 0)),
            (b"EVALSHA", (sha, 1, "key", "arg")),
            (b"SADD", ("direct-string", "x")),
        ]
    )
    redis_client.set("direct-string", "not a set")
    assert replies[0] == 2
    assert isinstance(replies[1], redis.exceptions.NoScriptError)
    assert replies[2] == [b"key", b"arg"]
    assert replies[3] == 1
    wrong = sender.send([(b"SADD", ("direct-string", "y")), (b"SADD", ("direct-set", "c"))])
    assert isinstance(wrong[0], redis.exceptions.ResponseError)
    assert wrong[1] == 1
    assert redis_client.smembers("direct-set") == {b"a", b"b", b"c"}


_BUSY = """
local start = redis.call("TIME")
local now = start
while (now[1] - start[1]) * 1e6 + (now[2] - start[2]) < 400000 do
  now = redis.call("TIME")
end
return "late"
"""


def test_a_connection_that_failed_is_closed_before_it_is_reused(redis_url: str) -> None:
    """A reply that does not come in time fails the call, and the connection
    is closed: its late reply is never read as the answer to the next call."""
    client = redis.Redis.from_url(redis_url, socket_timeout=0.1)
    try:
        sender = DirectSender(client)
        sha = client.script_load(_BUSY)
        with pytest.raises(redis.exceptions.TimeoutError):
            sender.send([(b"EVALSHA", (sha, 0))])
        with redis.Redis.from_url(redis_url) as patient:
            assert patient.ping()  # answered once the script is over
        assert sender.send([(b"SADD", ("after-timeout", "a"))]) == [1]
    finally:
        client.close()


def test_clients_without_one_pool_are_not_sent_to() -> None:
    assert DirectSender.usable(redis.Redis())
    assert not DirectSender.usable(redis.Redis(single_connection_client=True))
    assert not DirectSender.usable(object())
