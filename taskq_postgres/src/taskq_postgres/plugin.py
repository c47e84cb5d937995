"""Registers the PostgreSQL broker with taskq (entry point ``taskq: postgres``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskq_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from taskq_core.broker import Broker
    from taskq_core.plugins import Registry

__all__ = ["postgres_broker", "taskq_register"]


def postgres_broker(**options: Any) -> Broker:
    """Build the PostgreSQL broker (``url=`` a ``postgresql://`` URL; none:
    libpq's defaults, such as ``PGHOST`` and ``PGDATABASE``)."""
    from taskq_postgres.broker import PostgresBroker

    return PostgresBroker(**options)


@hookimpl
def taskq_register(register: Registry) -> None:
    """Register ``postgres`` for the ``postgresql`` and ``postgres`` URL schemes."""
    register.broker(
        "postgres",
        factory=postgres_broker,
        schemes=("postgresql", "postgres"),
        distribution="taskq-postgres",
    )
