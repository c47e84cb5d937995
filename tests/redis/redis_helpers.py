"""Helpers shared by the Redis broker tests."""

from __future__ import annotations

from typing import Any

from taskq_core.broker import EnqueueRequest
from taskq_redis import RedisBroker
from taskq_redis._codec import split_data

Q = "rq"
FAR = 1000.0


def read_data(broker: RedisBroker, queue: str, task_id: str) -> tuple[bytes | None, bytes | None]:
    """The payload and the meta string stored for a task (``None``: missing),
    read with the raw client."""
    return split_data(broker.client.hget(broker.layout.queue(queue).tasks, f"d:{task_id}"))


def write_data(
    broker: RedisBroker, queue: str, task_id: str, payload: bytes | None, meta: bytes | None
) -> None:
    """Store a task's payload and meta string (``None``: missing) with the raw
    client, in the broker's layout: one field ``d:<id>`` holding the meta, a
    newline and the payload; the meta alone when the payload is missing."""
    key, field = broker.layout.queue(queue).tasks, f"d:{task_id}"
    if payload is None and meta is None:
        broker.client.hdel(key, field)
    elif payload is None:
        broker.client.hset(key, field, meta or b"")
    else:
        broker.client.hset(key, field, (meta or b"") + b"\n" + payload)


def drop_task_data(broker: Any, queue: str, task_id: str) -> None:
    """Delete a task's payload as an outside writer would (its meta and its
    state entries untouched)."""
    assert isinstance(broker, RedisBroker)
    _payload, meta = read_data(broker, queue, task_id)
    write_data(broker, queue, task_id, None, meta)


def req(
    task_id: str, queue: str = Q, payload: bytes | None = None, **options: Any
) -> EnqueueRequest:
    """An enqueue request with a payload derived from the id."""
    data = f"payload-{task_id}".encode() if payload is None else payload
    return EnqueueRequest(id=task_id, queue=queue, payload=data, **options)


def ids(tasks: list[Any]) -> list[str]:
    """The ids of stored tasks, in order."""
    return [task.id for task in tasks]
