"""Helpers of the PostgreSQL broker tests: change the database behind the
broker's back, through a connection of the test's own (as another program
would)."""

from __future__ import annotations

from typing import Any

import psycopg

from taskq_core.broker import Broker
from taskq_postgres import PostgresBroker

__all__ = ["TABLES", "drop_task_data", "empty_tables", "rows", "sql"]

#: every table of taskq's schema but the version table
TABLES = (
    "taskq_tasks",
    "taskq_entries",
    "taskq_executions",
    "taskq_locks",
    "taskq_queue_slots",
    "taskq_system_locks",
    "taskq_rate_limits",
)


def empty_tables(url: str) -> None:
    """Delete every row of taskq's tables (when they exist)."""
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass('taskq_entries') IS NOT NULL").fetchone()
        if found is not None and found[0]:
            conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")


def _url(broker: Broker) -> str:
    assert isinstance(broker, PostgresBroker)
    return broker._connections.conninfo


def sql(broker: Broker, statement: str, *params: Any) -> None:
    """Run a statement on the broker's database (committed)."""
    with psycopg.connect(_url(broker), autocommit=True) as conn:
        conn.execute(statement, params or None)


def rows(broker: Broker, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of a query on the broker's database."""
    with psycopg.connect(_url(broker), autocommit=True) as conn:
        return list(conn.execute(statement, params or None).fetchall())


def drop_task_data(broker: Broker, queue: str, task_id: str) -> None:
    """Delete a task's data and records but keep its state entries."""
    with psycopg.connect(_url(broker), autocommit=True) as conn, conn.transaction():
        conn.execute("DELETE FROM taskq_tasks WHERE queue = %s AND id = %s", (queue, task_id))
        conn.execute("DELETE FROM taskq_executions WHERE queue = %s AND id = %s", (queue, task_id))
