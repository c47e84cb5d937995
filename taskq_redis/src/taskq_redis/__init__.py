"""taskq's Redis broker (``redis://``, ``rediss://``, ``unix://``)."""

from __future__ import annotations

from taskq_redis.broker import RedisBroker

__all__ = ["RedisBroker"]
