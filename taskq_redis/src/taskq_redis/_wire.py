"""The hot path's commands, sent straight on a pooled connection.

Every task costs the worker one ``EVALSHA`` and every ``delay`` an ``SADD``
and an ``EVALSHA``. Sent through redis-py's command methods, each pays for
argument encoding in Python, the client's retry and observability wrappers and
a pipeline object: about as long as Redis takes to run the script. Here those
commands are packed into one RESP request and their replies read on a
connection taken from the client's own pool, so connection settings, TLS,
authentication, health checks and fork safety stay redis-py's. Replies are
parsed by the connection's parser, as redis-py would (these commands' replies
need no client-side conversion). Clients without one pool (a cluster client,
a client bound to a single connection) are not sent to here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.exceptions

__all__ = ["DIRECT_COMMANDS", "DirectSender", "pack_command"]

#: the commands sent this way, by the redis-py method name of a call
DIRECT_COMMANDS = {"evalsha": b"EVALSHA", "sadd": b"SADD"}


def _arg(value: Any) -> bytes:
    """One argument as Redis receives it (as redis-py encodes it)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode("ascii")
    raise redis.exceptions.DataError(
        f"invalid argument {value!r} ({type(value).__name__}): give bytes, str, int or float"
    )


def pack_command(name: bytes, args: Sequence[Any]) -> bytes:
    """``name`` and ``args`` as one RESP request (an array of bulk strings)."""
    parts = [b"*%d\r\n$%d\r\n%s\r\n" % (len(args) + 1, len(name), name)]
    for value in args:
        data = _arg(value)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class DirectSender:
    """Sends commands in one request on a connection of ``client``'s pool."""

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self._get = _connection_getter(self.pool)

    @staticmethod
    def usable(client: Any) -> bool:
        """Whether ``client`` has one connection pool to take connections from."""
        return (
            isinstance(client, redis.Redis)
            and getattr(client, "connection", None) is None
            and getattr(client, "connection_pool", None) is not None
        )

    def send(self, commands: Sequence[tuple[bytes, Sequence[Any]]]) -> list[Any]:
        """The reply to each command, in order; an error reply comes back as
        its exception (after every reply was read). A connection that failed
        is closed before it goes back to the pool."""
        request = b"".join(pack_command(name, args) for name, args in commands)
        connection = self._get()
        try:
            connection.send_packed_command([request])
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
            return replies
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self.pool.release(connection)


def _connection_getter(pool: Any) -> Callable[[], Any]:
    """``pool.get_connection`` as this redis-py wants it called: with no
    arguments since 5.3 (which warns about any), with a command name before."""
    try:
        parameter = inspect.signature(pool.get_connection).parameters.get("command_name")
    except (TypeError, ValueError):
        parameter = None
    if parameter is not None and parameter.default is inspect.Parameter.empty:
        return lambda: pool.get_connection("EVALSHA")
    getter: Callable[[], Any] = pool.get_connection
    return getter
