"""Helpers shared by the Redis broker tests."""

from __future__ import annotations

from typing import Any

from taskq_core.broker import EnqueueRequest
from taskq_redis import RedisBroker

Q = "rq"
FAR = 1000.0


def drop_task_data(broker: Any, queue: str, task_id: str) -> None:
    """Delete a task's payload as an outside writer would (states untouched)."""
    assert isinstance(broker, RedisBroker)
    broker.client.hdel(broker.layout.queue(queue).tasks, f"d:{task_id}")


def req(
    task_id: str, queue: str = Q, payload: bytes | None = None, **options: Any
) -> EnqueueRequest:
    """An enqueue request with a payload derived from the id."""
    data = f"payload-{task_id}".encode() if payload is None else payload
    return EnqueueRequest(id=task_id, queue=queue, payload=data, **options)


def ids(tasks: list[Any]) -> list[str]:
    """The ids of stored tasks, in order."""
    return [task.id for task in tasks]
