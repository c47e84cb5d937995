"""The PostgreSQL broker passes the whole broker contract suite and the
stateful model test, on the private server's test database."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from pg_helpers import drop_task_data, empty_tables

from taskq_core.broker import Broker
from taskq_core.states import Transition
from taskq_core.testing import stateful
from taskq_core.testing.contract import BrokerContractTests, DropTaskData
from taskq_postgres import PostgresBroker


class TestPostgresContract(BrokerContractTests):
    """Every contract test, against an emptied database."""

    @pytest.fixture
    def broker(self, clean_url: str) -> Iterator[Broker]:
        broker = PostgresBroker(clean_url)
        yield broker
        broker.close()

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        return drop_task_data


def test_postgres_broker_follows_the_model(postgres_url: str) -> None:
    """Random sequences of operations keep the PostgreSQL broker equal to the
    model (no task lost or duplicated, only allowed twin combinations, same
    scores, scheduled_at, payloads and records), also after task data is
    deleted behind the broker's back."""

    def fresh_broker() -> Broker:
        empty_tables(postgres_url)
        return PostgresBroker(postgres_url)

    machine = stateful.make_broker_state_machine(fresh_broker, drop_task_data)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=int(os.environ.get("TASKQ_STATEFUL_EXAMPLES", "40")),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
    seen: set[Transition] = machine.seen_transitions  # type: ignore[attr-defined]
    assert {Transition.ENQUEUE, Transition.POP} <= seen
