"""Talking to Redis: commands in round trips, scripts by EVALSHA, errors.

A :class:`Call` is one command (a script call is ``EVALSHA``). A
:class:`Transport` sends a list of calls in one round trip (a pipeline
without MULTI when there are several), loads the scripts Redis answers
``NOSCRIPT`` for and resends just the refused calls, in their order, and turns
redis-py's errors into taskq's broker errors. It knows nothing of tasks: what
the arguments mean and how to read the replies is the broker's business.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.exceptions

from taskq_core.exceptions import BrokerConnectionError, BrokerError
from taskq_redis._connection import make_client
from taskq_redis._scripts import ScriptSet
from taskq_redis._wire import DIRECT_COMMANDS, DirectSender

__all__ = ["Call", "Transport"]


@dataclass
class Call:
    """One command for :meth:`Transport.run` (``script`` set for EVALSHA)."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    script: str | None = None


class Transport:
    """A Redis client, its scripts, and the round trips made with them.

    :param connection: a ready ``redis.Redis``, or ``None`` to build one from
        ``url`` and ``options`` (see :func:`~taskq_redis._connection.make_client`).
    """

    def __init__(
        self, connection: redis.Redis | None, url: str | None, options: dict[str, Any]
    ) -> None:
        # the client always returns bytes; the URL is for messages (no password)
        self.client, self.url, self._owns_client = make_client(connection, url, options)
        self.scripts = ScriptSet()
        self._direct = DirectSender(self.client) if DirectSender.usable(self.client) else None

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn redis-py errors raised inside the block into taskq's broker
        errors (naming the server, never its password)."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BrokerConnectionError(f"cannot reach Redis at {self.url}: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise BrokerError(f"Redis at {self.url} failed: {exc}") from exc

    def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Call:
        """The EVALSHA call of script ``name`` with ``keys`` and ``args``."""
        return Call("evalsha", self.scripts.evalsha_args(name, keys, args), script=name)

    def send(self, calls: Sequence[Call]) -> list[Any]:
        """One round trip; a refused script comes back as its
        ``NoScriptError`` (in a pipeline, every error comes back as a value).
        The hot path's commands skip redis-py's command layer (``_wire``)."""
        if self._direct is not None and all(
            c.method in DIRECT_COMMANDS and not c.kwargs for c in calls
        ):
            return self._direct.send([(DIRECT_COMMANDS[c.method], c.args) for c in calls])
        if len(calls) == 1:
            call = calls[0]
            try:
                return [getattr(self.client, call.method)(*call.args, **call.kwargs)]
            except redis.exceptions.NoScriptError as exc:
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            getattr(pipe, call.method)(*call.args, **call.kwargs)
        results: list[Any] = pipe.execute(raise_on_error=False)
        return results

    def run(self, calls: Sequence[Call]) -> list[Any]:
        """Send ``calls`` in one round trip; load scripts on NOSCRIPT and resend
        only the script calls that were refused (in their order)."""
        with self.errors():
            results = self.send(calls)
            missing = [
                i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)
            ]
            if missing:
                names = {calls[i].script for i in missing}
                for name in sorted(n for n in names if n is not None):
                    self.client.script_load(self.scripts[name].source)
                again = self.send([calls[i] for i in missing])
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results

    def one(self, call: Call) -> Any:
        """The reply to one call."""
        return self.run([call])[0]

    def after_fork(self) -> None:
        """Drop the connections inherited from the parent (new ones are made)."""
        self.client.connection_pool.reset()

    def close(self) -> None:
        """Close the connections, if the transport made the client."""
        if self._owns_client:
            self.client.connection_pool.disconnect()
