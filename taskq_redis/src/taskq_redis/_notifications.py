"""Listening for activity: the pub/sub channel the scripts publish on.

A script that queues a task publishes the queue's name on the channel
(``<prefix>:activity``). The subscription is made on first use and made again
after the connection failed, so a worker that lost Redis listens again once
it is back. (Workers also re-read the queue lists on a timer, so a name
published while nobody listened never strands a queue.)
"""

from __future__ import annotations

import time
from typing import Any

import redis.client
import redis.exceptions

from taskq_core.exceptions import BrokerConnectionError
from taskq_redis._codec import text
from taskq_redis._transport import Transport

__all__ = ["Notifications"]


class Notifications:
    """The subscription to ``channel`` on ``transport``'s server."""

    def __init__(self, transport: Transport, channel: str) -> None:
        self.transport = transport
        self.channel = channel
        self._pubsub: redis.client.PubSub | None = None

    def _subscription(self) -> redis.client.PubSub:
        if self._pubsub is None:
            # typed in some redis-py releases and not in others: call it untyped
            make_pubsub: Any = self.transport.client.pubsub
            pubsub: redis.client.PubSub = make_pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
            except BaseException:
                pubsub.close()
                raise
            self._pubsub = pubsub
        return self._pubsub

    def subscribe(self) -> None:
        """Start listening now (:meth:`wait` does it on its first call otherwise)."""
        with self.transport.errors():
            self._subscription()

    def wait(self, timeout: float) -> set[str]:
        """The queue names published within ``timeout`` seconds: returns as
        soon as one arrived (with any others already waiting)."""
        deadline = time.monotonic() + max(0.0, float(timeout))
        names: set[str] = set()
        try:
            with self.transport.errors():
                pubsub = self._subscription()
                while True:
                    remaining = 0.0 if names else max(0.0, deadline - time.monotonic())
                    message = pubsub.get_message(timeout=remaining)
                    if message is None:
                        if names or time.monotonic() >= deadline:
                            return names
                        continue
                    if message.get("type") == "message":
                        names.add(text(message["data"]))
        except BrokerConnectionError:
            self._reset()
            raise

    def _reset(self) -> None:
        """Forget a failed subscription (the next wait subscribes again)."""
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except (redis.exceptions.RedisError, OSError):
                pass

    def after_fork(self) -> None:
        """Forget the parent's subscription without touching its connection."""
        self._pubsub = None

    def close(self) -> None:
        """Unsubscribe and close the subscription's connection."""
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.exceptions.RedisError:
                pass
            self._pubsub = None
