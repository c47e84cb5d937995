"""Helpers of the SQLite broker's tests: change the file behind the broker's
back, through a connection of the test's own (as another program would)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

from taskq_core.broker import Broker
from taskq_core.brokers.sqlite import SQLiteBroker

__all__ = ["drop_task_data", "outside", "rows"]


@contextmanager
def outside(broker: Broker) -> Iterator[sqlite3.Connection]:
    """A connection of another writer to the broker's file, committed at the end."""
    assert isinstance(broker, SQLiteBroker)
    with closing(sqlite3.connect(broker.path, timeout=30)) as db, db:
        yield db


def drop_task_data(broker: Broker, queue: str, task_id: str) -> None:
    """Delete a task's data and records but keep its state entries."""
    with outside(broker) as db:
        db.execute("DELETE FROM taskq_tasks WHERE queue = ? AND id = ?", (queue, task_id))
        db.execute("DELETE FROM taskq_executions WHERE queue = ? AND id = ?", (queue, task_id))


def rows(broker: Broker, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of a query on the broker's file."""
    with outside(broker) as db:
        return list(db.execute(sql, params).fetchall())
