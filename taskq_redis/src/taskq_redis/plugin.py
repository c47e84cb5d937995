"""Registers the Redis broker with taskq (entry point ``taskq: redis``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from taskq_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from taskq_core.plugins import Registry

__all__ = ["taskq_register"]


@hookimpl
def taskq_register(register: Registry) -> None:
    """Register ``redis`` for the ``redis``, ``rediss`` and ``unix`` URL schemes."""
    from taskq_redis.broker import RedisBroker

    register.broker(
        "redis",
        factory=RedisBroker.from_options,
        schemes=("redis", "rediss", "unix"),
        cli_options=[
            click.Option(["-h", "--host"], help="Redis host (default localhost)."),
            click.Option(["-p", "--port"], type=int, help="Redis port (default 6379)."),
            click.Option(
                ["-a", "--password"],
                envvar="TASKQ_REDIS_PASSWORD",
                help="Redis password (better: the TASKQ_REDIS_PASSWORD environment variable).",
            ),
            click.Option(["-n", "--db"], type=int, help="Redis database number (default 0)."),
        ],
        distribution="taskq-redis",
    )
