"""Example task functions, as a user of taskq would write them.

The worker imports this module (``taskq worker -m examples.tasks``); the app
object names no broker: it uses ``TASKQ_URL`` when that is set, else the
default broker, a SQLite file that needs no server.
"""

from __future__ import annotations

import time

from taskq_core import RetryException, TaskQ, fixed, periodic

tq = TaskQ()


@tq.task
def send_welcome_email(user_id: int) -> None:
    """A plain task: pretend to send an email."""
    time.sleep(0.01)
    tq.log.info("welcome email sent", user_id=user_id)


@tq.task(queue="reports", priority=10)
def build_report(name: str, rows: int = 100) -> int:
    """A higher-priority task in its own queue."""
    total = sum(range(rows))
    tq.log.info("report built", name=name, total=total)
    return total


@tq.task(retry_method=fixed(0, 3))
def flaky_payment(order_id: int) -> None:
    """Fails on its first two runs, then succeeds: retried by its policy."""
    if tq.current_task.n_executions() < 2:
        raise ConnectionError(f"payment gateway timed out for order {order_id}")
    tq.log.info("payment captured", order_id=order_id)


@tq.task(unique=True, lock=True)
def reindex(shard: int) -> None:
    """A unique, locked task: enqueued twice, it runs once."""
    tq.log.info("reindexed", shard=shard)


@tq.task
def always_fails() -> None:
    """Lands in the error state, where `taskq tasks default error` shows it."""
    raise RetryException(method=fixed(0, 1)) from ValueError("bad input")


@tq.task(schedule=periodic(minutes=5))
def cleanup() -> None:
    """A periodic task: scheduled by the worker every five minutes."""
    tq.log.info("cleanup ran")
