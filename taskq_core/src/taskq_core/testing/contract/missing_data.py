"""Missing data: what each operation does with an id whose data was lost
outside taskq (these tests need a ``drop_task_data`` fixture)."""

from __future__ import annotations

import time

import pytest

from taskq_core.broker import Broker
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import STATES, State
from taskq_core.testing.contract._base import (
    FAR,
    ContractBase,
    DropTaskData,
    Q,
    _activate,
    _fail,
    _ids,
    _payload,
    _req,
    _states_of,
)

__all__ = ["MissingDataContract"]


class MissingDataContract(ContractBase):
    """Tests of ids whose data is missing."""

    # -- missing data ----------------------------------------------------------
    def test_pop_drops_id_with_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """pop drops a queued id whose data is missing and returns the others."""
        drop = self._need_drop(drop_task_data)
        broker.enqueue(_req("lost"))
        time.sleep(0.002)
        broker.enqueue(_req("kept"))
        drop(broker, Q, "lost")
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["kept"]
        assert broker.queue_sizes(Q)[State.QUEUED] == 0
        assert _states_of(broker, Q, "lost") == set()

    def test_pop_reports_the_ids_it_drops(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """Decision 19: an id that pop drops because its data is missing is
        reported once by take_dropped (queue, id, state, reason), so that the
        worker can log it; nothing else is reported."""
        drop = self._need_drop(drop_task_data)
        broker.enqueue(_req("lost"))
        time.sleep(0.002)
        broker.enqueue(_req("kept"))
        drop(broker, Q, "lost")
        assert broker.take_dropped() == []
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["kept"]
        dropped = broker.take_dropped()
        assert [(d.queue, d.task_id, d.state, d.moved_to_error) for d in dropped] == [
            (Q, "lost", State.QUEUED, False)
        ]
        assert "missing" in dropped[0].reason
        assert broker.take_dropped() == []

    def test_list_tasks_marks_missing_data_once(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """list_tasks returns a task whose data is missing once, in its place,
        with missing=True; no other task is duplicated or dropped."""
        drop = self._need_drop(drop_task_data)
        now = broker.time()
        for offset, task_id in enumerate(("first", "lost", "last"), start=1):
            broker.enqueue(_req(task_id, when=now + FAR + offset))
        drop(broker, Q, "first")
        drop(broker, Q, "lost")
        total, tasks = broker.list_tasks(Q, State.SCHEDULED)
        assert total == 3
        assert _ids(tasks) == ["first", "lost", "last"]
        assert [t.missing for t in tasks] == [True, True, False]
        assert tasks[1].payload == b""
        assert tasks[1].ts == now + FAR + 2
        assert tasks[2].payload == _payload("last")
        with pytest.raises(TaskNotFound):
            broker.get_task(Q, State.SCHEDULED, "lost")
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "lost")

    def test_purge_errors_includes_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """purge_errors deletes error ids whose data is missing too."""
        drop = self._need_drop(drop_task_data)
        _fail(broker, "lost")
        _fail(broker, "kept")
        drop(broker, Q, "lost")
        assert broker.purge_errors(Q, None, None) == 2
        assert broker.list_tasks(Q, State.ERROR) == (0, [])

    def test_recover_expired_clears_active_id_with_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """An active id whose data is missing is listed as expired, and
        recover_expired with done removes it."""
        drop = self._need_drop(drop_task_data)
        _activate(broker, "lost")
        drop(broker, Q, "lost")
        assert broker.expired_tasks(broker.time() + 1, 10) == [(Q, "lost")]
        assert broker.recover_expired(Q, "lost", broker.time() + 1, "done")
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)

    def test_drop_expired_missing_removes_only_lost_expired_ids(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """drop_expired_missing removes an expired active id whose data is
        missing and returns True; it leaves alone (False) an id whose data is
        there, one whose heartbeat is not before ``older_than``, and ids that
        are not active."""
        drop = self._need_drop(drop_task_data)
        lost = _activate(broker, "lost")
        _activate(broker, "kept")
        broker.enqueue(_req("queued"))
        drop(broker, Q, "lost")
        drop(broker, Q, "queued")
        assert not broker.drop_expired_missing(Q, "lost", lost.ts)
        assert not broker.drop_expired_missing(Q, "kept", broker.time() + 1)
        assert not broker.drop_expired_missing(Q, "queued", broker.time() + 1)
        assert not broker.drop_expired_missing(Q, "unknown", broker.time() + 1)
        assert _states_of(broker, Q, "lost") == {State.ACTIVE}
        assert broker.drop_expired_missing(Q, "lost", broker.time() + 1)
        assert _states_of(broker, Q, "lost") == set()
        assert not broker.drop_expired_missing(Q, "lost", broker.time() + 1)
        assert broker.expired_tasks(broker.time() + 1, 10) == [(Q, "kept")]
        assert broker.get_task(Q, State.ACTIVE, "kept").payload == _payload("kept")
        assert broker.queue_sizes(Q)[State.QUEUED] == 1

    def test_drop_expired_missing_refuses_once_data_is_back(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """A unique task enqueued again after its running copy lost its data has
        data again: drop_expired_missing leaves it, and the lost run is then
        recovered as usual."""
        drop = self._need_drop(drop_task_data)
        _activate(broker, "u", unique=True)
        drop(broker, Q, "u")
        broker.enqueue(_req("u", unique=True, payload=b"again"))
        assert not broker.drop_expired_missing(Q, "u", broker.time() + 1)
        assert _states_of(broker, Q, "u") == {State.ACTIVE, State.QUEUED}
        assert broker.recover_expired(Q, "u", broker.time() + 1, "requeue")
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"again"

    def test_unique_reenqueue_gives_a_pending_id_its_data_again(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """A unique task enqueued again while its pending id has lost its data
        gets the new payload, in the same place; a request that is not
        unique leaves the id without data."""
        drop = self._need_drop(drop_task_data)
        first = broker.enqueue(_req("u", unique=True))
        broker.enqueue(_req("v"))
        drop(broker, Q, "u")
        assert not broker.enqueue(_req("u", payload=b"plain")).created
        assert broker.list_tasks(Q, State.QUEUED)[1][0].missing
        again = broker.enqueue(_req("u", unique=True, payload=b"again"))
        assert not again.created
        assert again.ts == first.ts
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"again"
        assert _ids(broker.pop(Q, 2, "w1", FAR)) == ["u", "v"]

    def test_cancel_and_delete_clear_ids_with_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """cancel and delete remove an id from its state even when its data is
        missing; update_scheduled_time and retry_from_error refuse it."""
        drop = self._need_drop(drop_task_data)
        broker.enqueue(_req("s", when=broker.time() + FAR))
        _fail(broker, "e")
        drop(broker, Q, "s")
        drop(broker, Q, "e")
        with pytest.raises(TaskNotFound):
            broker.update_scheduled_time(Q, "s", broker.time() + 5)
        with pytest.raises(TaskNotFound):
            broker.retry_from_error(Q, "e")
        broker.cancel(Q, "s")
        broker.delete(Q, "e")
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
