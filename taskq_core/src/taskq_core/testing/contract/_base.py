"""What every section of the contract suite shares: the ``broker`` and
``drop_task_data`` fixtures (on :class:`ContractBase`), the queue names and
times the tests use, and helpers that build requests and records, move a task
into a state, read the clock and wait for notifications.

Brokers use their own clock, so the helpers only use times relative to
:meth:`~taskq_core.broker.Broker.time`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Unpack

import pytest

from taskq_core.broker import Broker, EnqueueRequest, Execution, StoredTask
from taskq_core.states import STATES, State

__all__ = [
    "EPS",
    "FAR",
    "OTHER",
    "TTL",
    "ContractBase",
    "DropTaskData",
    "Q",
]

#: ``(broker, queue, task_id)``: delete a task's data but keep its state entries.
DropTaskData = Callable[[Broker, str, str], None]

Q = "contract"
OTHER = "contract.other"
FAR = 1000.0
#: tolerance for comparing a broker-stamped time with a bracket read around it
EPS = 1e-3
#: a TTL short enough to wait out in a test, long enough not to lapse by itself
TTL = 0.3


def _payload(task_id: str) -> bytes:
    """Opaque bytes that are not valid UTF-8, to catch text round trips."""
    return b"\x00\xff\x80" + task_id.encode() + b" [] {} 1.2345678901234567"


def _req(task_id: str, queue: str = Q, **options: Any) -> EnqueueRequest:
    payload = options.pop("payload", None)
    return EnqueueRequest(
        id=task_id,
        queue=queue,
        payload=_payload(task_id) if payload is None else payload,
        **options,
    )


def _execution(number: int, **extra: Unpack[Execution]) -> Execution:
    record: Execution = {
        "time_started": 1_700_000_000.5 + number,
        "time_failed": 1_700_000_001.25 + number,
        "exception_name": "builtins:ValueError",
        "success": False,
        "host": "contract-host",
        "traceback": f"Traceback #{number}",
    }
    record.update(extra)
    return record


def _between(value: float | None, low: float, high: float) -> bool:
    return value is not None and low - EPS <= value <= high + EPS


def _states_of(broker: Broker, queue: str, task_id: str) -> set[State]:
    """Every state whose index holds ``task_id`` (data missing or not)."""
    found: set[State] = set()
    for state in STATES:
        _total, tasks = broker.list_tasks(queue, state, limit=1_000_000)
        if any(task.id == task_id for task in tasks):
            found.add(state)
    return found


def _ids(tasks: list[StoredTask]) -> list[str]:
    return [task.id for task in tasks]


def _activate(
    broker: Broker, task_id: str, queue: str = Q, worker: str = "w1", **options: Any
) -> StoredTask:
    """Enqueue ``task_id`` now and pop it (the queue must hold nothing else queued)."""
    broker.enqueue(_req(task_id, queue, **options))
    popped = broker.pop(queue, 1, worker, FAR)
    assert _ids(popped) == [task_id]
    return popped[0]


def _fail(broker: Broker, task_id: str, queue: str = Q, worker: str = "w1", **options: Any) -> None:
    """Enqueue, pop and fail ``task_id`` into ``error`` with one execution record."""
    _activate(broker, task_id, queue, worker, **options)
    assert broker.finish(queue, task_id, worker, "error", execution=_execution(1))


def _fail_n_times(
    broker: Broker, task_id: str, times: int, max_stored: int | None = None, queue: str = Q
) -> None:
    """Run ``task_id`` ``times`` times, each run failing and requeueing it."""
    broker.enqueue(_req(task_id, queue))
    for number in range(1, times + 1):
        assert _ids(broker.pop(queue, 1, "w1", FAR)) == [task_id]
        assert broker.finish(
            queue,
            task_id,
            "w1",
            "requeue",
            execution=_execution(number),
            max_stored_executions=max_stored,
        )


def _make_due(broker: Broker, task_id: str, queue: str = Q, ago: float = 10.0) -> float:
    """Make a scheduled task due now (without sleeping); returns its due time."""
    due = broker.time() - ago
    broker.update_scheduled_time(queue, task_id, due)
    return due


def _drain_activity(broker: Broker) -> None:
    """Consume notifications sent so far (and subscribe, for brokers that must)."""
    broker.wait_for_activity(0.05)
    broker.wait_for_activity(0.01)


def _announced(broker: Broker, queue: str, within: float = 3.0) -> bool:
    """Whether ``queue`` is announced by :meth:`Broker.wait_for_activity` soon."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if queue in broker.wait_for_activity(0.2):
            return True
    return False


class ContractBase:
    """The fixtures of the contract suite; every section mixin builds on it."""

    # -- fixtures --------------------------------------------------------------
    @pytest.fixture
    def broker(self) -> Broker:
        """A fresh, empty broker; subclasses must override this fixture."""
        raise NotImplementedError("subclasses of BrokerContractTests provide a `broker` fixture")

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        """Override to return a ``(broker, queue, task_id)`` callable that deletes
        a task's data but keeps its state entries; ``None`` skips those tests."""
        return None

    @staticmethod
    def _need_drop(drop_task_data: DropTaskData | None) -> DropTaskData:
        if drop_task_data is None:
            pytest.skip("the broker's test module provides no drop_task_data fixture")
        return drop_task_data
