"""API decisions 1, 5, 14, 15 and 16, inspection, purges and expired tasks
whose data was lost, through the public API against a real Redis (the same
scenarios run on the memory broker and on SQLite in
tests/core/test_broker_decisions.py and tests/core/test_sqlite_decisions.py).
Task data is deleted behind the broker's back with a raw client, as an
outside writer would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import broker_scenarios as scenarios
from taskq_core import TaskQ
from taskq_redis import RedisBroker


@pytest.fixture(autouse=True)
def _fresh_calls() -> Iterator[None]:
    scenarios.calls.clear()
    yield
    scenarios.calls.clear()


def _app(url: str, **config: Any) -> TaskQ:
    return TaskQ(url, config={"STATS_INTERVAL": 0, **config})


@pytest.fixture
def tq(redis_url: str, redis_client: redis.Redis) -> Iterator[TaskQ]:
    app = _app(redis_url)
    yield app
    app.broker.close()


def test_decision_1_unique_tasks_in_two_queues_are_two_tasks(tq: TaskQ) -> None:
    """The same unique call in a queue and its subqueue is two tasks; both run."""
    scenarios.unique_tasks_in_two_queues_are_two_tasks(tq)


def test_decision_5_arguments_round_trip_exactly(tq: TaskQ) -> None:
    """Empty and nested arguments, unicode and exact floats survive storage
    and update_scheduled_time, and reach the function as given."""
    scenarios.arguments_round_trip_exactly(tq)


def test_inspection_pages_oldest_first_and_counts_exact_queues(tq: TaskQ) -> None:
    """tasks_from_queue pages oldest first; sizes and stats count exact queue names."""
    scenarios.inspection_pages_oldest_first_and_counts_exact_queues(tq)


def test_purge_errored_tasks_filters_and_limits(tq: TaskQ) -> None:
    """purge_errored_tasks honours its filters and limit and returns the count."""
    scenarios.purge_errored_tasks_filters_and_limits(tq)


def test_decision_14_past_when_is_stamped_with_the_time_it_was_queued(tq: TaskQ) -> None:
    """A past or present ``when`` queues at once; scheduled_at is when it was queued."""
    scenarios.past_when_is_queued_at_once_and_stamped_now(tq)


def test_decision_15_reenqueued_queued_unique_task_takes_the_latest_arguments(
    tq: TaskQ,
) -> None:
    """A queued unique task enqueued again (Task.delay) keeps its place and
    runs with the latest arguments."""
    scenarios.reenqueued_queued_unique_task_keeps_place_takes_arguments(tq)


def test_decision_15_reenqueued_scheduled_unique_task_keeps_its_due_time(tq: TaskQ) -> None:
    """A scheduled unique task enqueued again keeps its due time, takes the
    latest arguments, and scheduled_at agrees with the due time."""
    scenarios.reenqueued_scheduled_unique_task_keeps_due_time_takes_arguments(tq)


def test_decision_16_periodic_error_entry_survives_later_runs(tq: TaskQ) -> None:
    """A periodic task's error entry and records stay through later runs
    (successful or not) until it is deleted."""
    scenarios.periodic_error_entry_stays_until_someone_acts(tq)


def test_expired_tasks_with_lost_data_leave_active_without_blocking_others(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Expired active tasks whose payload was deleted from Redis are removed
    from active, each with one warning, and do not keep the recovery pass
    from the others."""
    tq = _app(redis_url, REQUEUE_EXPIRED_TASKS_BATCH_SIZE=2, ACTIVE_TASK_UPDATE_TIMEOUT=0.5)
    broker = tq.broker
    assert isinstance(broker, RedisBroker)

    def drop_data(queue: str, task_id: str) -> None:
        assert redis_client.hdel(broker.layout.queue(queue).tasks, f"d:{task_id}") == 1

    try:
        scenarios.expired_tasks_with_lost_data_are_removed(tq, time.sleep, drop_data)
    finally:
        broker.close()
