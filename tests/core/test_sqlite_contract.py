"""The SQLite broker passes the whole broker contract suite and the stateful
model test, on a file of its own in a temporary directory."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from sqlite_helpers import drop_task_data

from taskq_core.broker import Broker
from taskq_core.brokers.sqlite import SQLiteBroker
from taskq_core.states import Transition
from taskq_core.testing import stateful
from taskq_core.testing.contract import BrokerContractTests, DropTaskData


class TestSQLiteContract(BrokerContractTests):
    """Every contract test, against a fresh SQLite file."""

    @pytest.fixture
    def broker(self, tmp_path: Path) -> Iterator[Broker]:
        broker = SQLiteBroker(tmp_path / "contract.db")
        yield broker
        broker.close()

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        return drop_task_data


def test_sqlite_broker_follows_the_model(tmp_path: Path) -> None:
    """Random sequences of operations keep the SQLite broker equal to the
    model (no task lost or duplicated, only allowed twin combinations, same
    scores, scheduled_at, payloads and records), also after task data is
    deleted behind the broker's back."""
    files = itertools.count()

    def fresh_broker() -> Broker:
        return SQLiteBroker(tmp_path / f"model-{next(files)}.db")

    machine = stateful.make_broker_state_machine(fresh_broker, drop_task_data)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=int(os.environ.get("TASKQ_STATEFUL_EXAMPLES", "50")),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
    seen: set[Transition] = machine.seen_transitions  # type: ignore[attr-defined]
    assert {Transition.ENQUEUE, Transition.POP} <= seen
