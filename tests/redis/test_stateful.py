"""The stateful model test of the broker contract, against Redis."""

from __future__ import annotations

import os

import redis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from redis_helpers import drop_task_data

from taskq_core.broker import Broker
from taskq_core.states import Transition
from taskq_core.testing import stateful
from taskq_redis import RedisBroker


def test_redis_broker_follows_the_model(redis_url: str, redis_client: redis.Redis) -> None:
    """Random sequences of operations keep the Redis broker equal to the model
    (no task lost or duplicated, only allowed twin combinations, same scores,
    scheduled_at, payloads and records), also after task data is deleted
    behind the broker's back."""

    def fresh_broker() -> Broker:
        redis_client.flushall()
        return RedisBroker(url=redis_url)

    machine = stateful.make_broker_state_machine(fresh_broker, drop_task_data)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=int(os.environ.get("TASKQ_STATEFUL_EXAMPLES", "30")),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
    seen: set[Transition] = machine.seen_transitions  # type: ignore[attr-defined]
    assert {Transition.ENQUEUE, Transition.POP} <= seen
