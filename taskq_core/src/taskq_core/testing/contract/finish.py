"""The end of a run: ``heartbeat``, ``finish`` with each outcome,
``finish_many``, ``finish_many_then_pop``, the stored execution records, and
unique tasks whose pending twin waits while a copy runs."""

from __future__ import annotations

import math
import time
from typing import Any, cast

import pytest

from taskq_core.broker import Broker, EnqueueRequest, Execution, FinishRequest
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import OUTCOMES, STATES, State
from taskq_core.testing.contract._base import (
    FAR,
    OTHER,
    ContractBase,
    Q,
    _activate,
    _announced,
    _between,
    _drain_activity,
    _execution,
    _fail,
    _fail_n_times,
    _ids,
    _make_due,
    _payload,
    _req,
    _states_of,
)

__all__ = ["FinishContract"]


class FinishContract(ContractBase):
    """Tests of ``heartbeat``, ``finish`` and its batched forms."""

    # -- heartbeat -------------------------------------------------------------
    def test_heartbeat_refreshes_owned_tasks(self, broker: Broker) -> None:
        """heartbeat moves the active score of the worker's tasks to now and
        returns their ids."""
        broker.enqueue_many([_req("a"), _req("b")])
        popped = broker.pop(Q, 2, "w1", FAR)
        time.sleep(0.01)
        before = broker.time()
        assert sorted(broker.heartbeat(Q, ["a", "b"], "w1")) == ["a", "b"]
        after = broker.time()
        for task in popped:
            refreshed = broker.get_task(Q, State.ACTIVE, task.id)
            assert refreshed.ts > task.ts
            assert _between(refreshed.ts, before, after)

    def test_heartbeat_many_refreshes_the_tasks_of_every_queue(self, broker: Broker) -> None:
        """heartbeat_many refreshes, by queue, only the worker's own active
        tasks, in several queues at once, and returns them by queue."""
        other = f"{Q}.other"
        broker.enqueue_many([_req("a"), EnqueueRequest("b", other, b"p"), _req("c")])
        broker.pop(Q, 2, "w1", FAR)
        broker.pop(other, 1, "w2", FAR)
        time.sleep(0.01)
        before = broker.time()
        refreshed = broker.heartbeat_many({Q: ["a", "c", "nope"], other: ["b"]}, "w1")
        assert sorted(refreshed[Q]) == ["a", "c"]
        assert refreshed.get(other, []) == []  # b belongs to w2
        assert broker.get_task(Q, State.ACTIVE, "a").ts >= before
        assert broker.get_task(other, State.ACTIVE, "b").ts < before
        assert broker.heartbeat_many({}, "w1") == {}

    def test_heartbeat_ignores_foreign_and_inactive_ids(self, broker: Broker) -> None:
        """heartbeat leaves alone tasks of another worker and ids not active."""
        mine = _activate(broker, "mine", worker="w1")
        theirs = _activate(broker, "theirs", worker="w2")
        broker.enqueue(_req("waiting"))
        time.sleep(0.01)
        assert broker.heartbeat(Q, ["mine", "theirs", "waiting", "nope"], "w1") == ["mine"]
        assert broker.get_task(Q, State.ACTIVE, "theirs").ts == theirs.ts
        assert broker.get_task(Q, State.ACTIVE, "mine").ts > mine.ts
        assert _states_of(broker, Q, "waiting") == {State.QUEUED}
        assert _states_of(broker, Q, "nope") == set()

    def test_heartbeat_after_recovery_does_not_resurrect(self, broker: Broker) -> None:
        """Once a task was recovered from an expired worker, that worker's
        heartbeat and finish do not touch it, even after another worker took it."""
        _activate(broker, "a", worker="w1")
        assert broker.recover_expired(Q, "a", broker.time() + 1, "requeue")
        assert broker.heartbeat(Q, ["a"], "w1") == []
        assert _states_of(broker, Q, "a") == {State.QUEUED}
        taken = broker.pop(Q, 1, "w2", FAR)
        assert _ids(taken) == ["a"]
        time.sleep(0.01)
        assert broker.heartbeat(Q, ["a"], "w1") == []
        assert broker.get_task(Q, State.ACTIVE, "a").ts == taken[0].ts
        assert not broker.finish(Q, "a", "w1", "done")
        assert broker.finish(Q, "a", "w2", "done")

    def test_heartbeat_after_failed_recovery_does_not_resurrect(self, broker: Broker) -> None:
        """A heartbeat after the task was failed by recovery leaves it in error."""
        _activate(broker, "a", worker="w1")
        assert broker.recover_expired(Q, "a", broker.time() + 1, "error")
        assert broker.heartbeat(Q, ["a"], "w1") == []
        assert _states_of(broker, Q, "a") == {State.ERROR}

    # -- finish ----------------------------------------------------------------
    def test_finish_done_deletes_task_and_records(self, broker: Broker) -> None:
        """A done task leaves active and its data and records are deleted."""
        _fail_n_times(broker, "a", 1)
        broker.pop(Q, 1, "w1", FAR)
        assert broker.finish(Q, "a", "w1", "done")
        assert _states_of(broker, Q, "a") == set()
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "a")
        for state in STATES:
            with pytest.raises(TaskNotFound):
                broker.get_task(Q, state, "a")

    def test_finish_by_other_worker_changes_nothing(self, broker: Broker) -> None:
        """finish by a worker that does not own the task returns False and
        changes nothing, not even the records."""
        task = _activate(broker, "a", worker="w1")
        for outcome in OUTCOMES:
            assert not broker.finish(Q, "a", "w2", outcome, execution=_execution(1))
        assert _states_of(broker, Q, "a") == {State.ACTIVE}
        assert broker.get_task(Q, State.ACTIVE, "a").ts == task.ts
        assert broker.executions_count(Q, "a") == 0

    def test_finish_of_task_not_active_changes_nothing(self, broker: Broker) -> None:
        """finish of a task that is not active (or unknown) returns False."""
        _fail(broker, "failed")
        broker.enqueue(_req("queued"))
        broker.enqueue(_req("later", when=broker.time() + FAR))
        for task_id in ("queued", "later", "failed", "unknown"):
            assert not broker.finish(Q, task_id, "w1", "done")
        assert broker.queue_sizes(Q) == {
            State.SCHEDULED: 1,
            State.QUEUED: 1,
            State.ACTIVE: 0,
            State.ERROR: 1,
        }

    def test_finish_retry_schedules_at_when_with_record(self, broker: Broker) -> None:
        """retry moves the task to scheduled at ``when`` and appends its record."""
        _activate(broker, "a")
        when = broker.time() + FAR
        assert broker.finish(Q, "a", "w1", "retry", when=when, execution=_execution(1))
        task = broker.get_task(Q, State.SCHEDULED, "a", load_executions=5)
        assert task.ts == when
        assert task.executions_count == 1
        assert task.executions == [_execution(1)]
        assert task.payload == _payload("a")
        assert _states_of(broker, Q, "a") == {State.SCHEDULED}

    def test_finish_many_ends_each_run_like_finish(self, broker: Broker) -> None:
        """finish_many ends a group's runs, each as its own finish: done,
        retry and error outcomes land where finish would put them, and a task
        this worker does not own is refused alone."""
        for task_id in ("a", "b", "c"):
            broker.enqueue(_req(task_id))
        assert sorted(_ids(broker.pop(Q, 3, "w1", FAR))) == ["a", "b", "c"]
        broker.enqueue(_req("d"))
        assert _ids(broker.pop(Q, 1, "w2", FAR)) == ["d"]
        when = broker.time() + FAR
        results = broker.finish_many(
            Q,
            "w1",
            [
                FinishRequest("a", "done"),
                FinishRequest("b", "retry", when=when, execution=_execution(1)),
                FinishRequest("c", "error", execution=_execution(1), max_stored_executions=1),
                FinishRequest("d", "done"),
            ],
        )
        assert results == [True, True, True, False]
        assert _states_of(broker, Q, "a") == set()
        assert broker.get_task(Q, State.SCHEDULED, "b").ts == when
        assert broker.get_task(Q, State.ERROR, "c", load_executions=5).executions == [_execution(1)]
        assert _states_of(broker, Q, "d") == {State.ACTIVE}

    def test_finish_many_then_pop_ends_runs_then_pops_the_next(self, broker: Broker) -> None:
        """finish_many_then_pop ends the given runs, then pops up to ``limit`` of
        what is queued next, owned by the same worker; limit 0 pops nothing."""
        for task_id in ("a", "b", "c"):
            broker.enqueue(_req(task_id))
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["a"]
        finished, popped = broker.finish_many_then_pop(
            Q, "w1", [FinishRequest("a", "done")], 5, FAR
        )
        assert finished == [True]
        assert _ids(popped) == ["b", "c"]
        assert _states_of(broker, Q, "a") == set()
        assert broker.heartbeat(Q, ["b", "c"], "w1") == ["b", "c"]
        finished, popped = broker.finish_many_then_pop(
            Q, "w1", [FinishRequest("b", "done")], 0, FAR
        )
        assert (finished, popped) == ([True], [])
        assert _states_of(broker, Q, "c") == {State.ACTIVE}

    def test_finish_many_ends_a_run_once(self, broker: Broker) -> None:
        """The same run given twice to one finish_many is ended by the first
        request; the second finds it no longer active (False, no change). No
        request: finish_many does nothing, finish_many_then_pop only pops."""
        _activate(broker, "a")
        results = broker.finish_many(
            Q,
            "w1",
            [
                FinishRequest("a", "retry", when=broker.time() + FAR, execution=_execution(1)),
                FinishRequest("a", "error", execution=_execution(2)),
            ],
        )
        assert results == [True, False]
        assert _states_of(broker, Q, "a") == {State.SCHEDULED}
        assert broker.executions_count(Q, "a") == 1
        assert broker.finish_many(Q, "w1", []) == []
        broker.enqueue(_req("b"))
        finished, popped = broker.finish_many_then_pop(Q, "w1", [], 5, FAR)
        assert (finished, _ids(popped)) == ([], ["b"])

    def test_finish_many_then_pop_pops_what_the_finishes_queued(self, broker: Broker) -> None:
        """The pop of finish_many_then_pop sees what its finishes did: the
        queued twin of a run that ended is popped (not deferred, with its own
        payload), and a run requeued now is popped behind the tasks queued
        before it."""
        _activate(broker, "a")
        _activate(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, payload=b"next"))
        broker.enqueue(_req("b"))
        time.sleep(0.002)
        finished, popped = broker.finish_many_then_pop(
            Q, "w1", [FinishRequest("u", "done")], 1, FAR
        )
        assert finished == [True]
        assert _ids(popped) == ["u"]
        assert popped[0].payload == b"next"
        finished, popped = broker.finish_many_then_pop(
            Q, "w1", [FinishRequest("a", "requeue")], 5, FAR
        )
        assert finished == [True]
        assert _ids(popped) == ["b", "a"]
        assert broker.queue_sizes(Q) == {
            State.SCHEDULED: 0,
            State.QUEUED: 0,
            State.ACTIVE: 3,
            State.ERROR: 0,
        }

    def test_finish_refuses_bad_arguments_without_change(self, broker: Broker) -> None:
        """An unknown outcome, a negative max_stored_executions or a ``when``
        that is not a finite number raises ValueError (naming what is wrong),
        from finish (whether the task is active or not), recover_expired and
        finish_many (before any run of the batch is ended); the run stays
        active, owned, with no record added."""
        task = _activate(broker, "a")
        bad: list[tuple[str, Any, dict[str, Any]]] = [
            ("outcome", "vanish", {}),
            ("max_stored_executions", "error", {"max_stored_executions": -1}),
            ("finite", "retry", {"when": math.inf}),
            ("finite", "requeue", {"when": math.nan}),
        ]
        for message, outcome, options in bad:
            for task_id in ("a", "unknown"):
                with pytest.raises(ValueError, match=message):
                    broker.finish(Q, task_id, "w1", outcome, execution=_execution(1), **options)
            with pytest.raises(ValueError, match=message):
                broker.recover_expired(Q, "a", broker.time() + 1, outcome, **options)
            requests = [FinishRequest("a", "done"), FinishRequest("a", outcome, **options)]
            with pytest.raises(ValueError, match=message):
                broker.finish_many(Q, "w1", requests)
        assert _states_of(broker, Q, "a") == {State.ACTIVE}
        assert broker.get_task(Q, State.ACTIVE, "a").ts == task.ts
        assert broker.executions_count(Q, "a") == 0
        assert broker.finish(Q, "a", "w1", "done")

    def test_finish_retry_without_when_is_due_now(self, broker: Broker) -> None:
        """retry without ``when`` schedules the task at now: due at once."""
        _activate(broker, "a")
        before = broker.time()
        assert broker.finish(Q, "a", "w1", "retry", execution=_execution(1))
        after = broker.time()
        assert _between(broker.get_task(Q, State.SCHEDULED, "a").ts, before, after)
        assert broker.move_due(Q, 10) == 1

    def test_finish_requeue_past_when_is_queued_now(self, broker: Broker) -> None:
        """requeue with a ``when`` already past queues the task at now (behind
        what is queued), not at ``when`` (unlike retry, which keeps it)."""
        _activate(broker, "a")
        broker.enqueue(_req("b"))
        before = broker.time()
        assert broker.finish(Q, "a", "w1", "requeue", when=before - 60)
        after = broker.time()
        assert _between(broker.get_task(Q, State.QUEUED, "a").ts, before, after)
        assert _ids(broker.pop(Q, 2, "w1", FAR)) == ["b", "a"]

    def test_moves_change_the_score_not_the_stored_times(self, broker: Broker) -> None:
        """scheduled_at and time_last_queued are written by enqueue (and
        scheduled_at by update_scheduled_time) only: requeue, retry,
        move_due, error, retry_from_error and recovery leave them as they were."""
        broker.enqueue(_req("a"))
        first = broker.get_task(Q, State.QUEUED, "a")
        steps: list[tuple[Any, State]] = [
            ("requeue", State.QUEUED),
            ("retry", State.SCHEDULED),
            ("error", State.ERROR),
            ("recover", State.SCHEDULED),
        ]
        for outcome, state in steps:
            time.sleep(0.002)
            assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["a"]
            if outcome == "recover":
                assert broker.recover_expired(
                    Q, "a", broker.time() + 1, "retry", when=broker.time() - 1
                )
            elif outcome == "retry":
                assert broker.finish(Q, "a", "w1", "retry", when=broker.time() - 1)
            else:
                assert broker.finish(Q, "a", "w1", outcome)
            task = broker.get_task(Q, state, "a")
            assert task.scheduled_at == first.scheduled_at, outcome
            assert task.time_last_queued == first.time_last_queued, outcome
            assert task.ts != first.ts, outcome
            if state is State.SCHEDULED:
                assert broker.move_due(Q, 10) == 1
            elif state is State.ERROR:
                broker.retry_from_error(Q, "a")
            queued = broker.get_task(Q, State.QUEUED, "a")
            assert queued.scheduled_at == first.scheduled_at, outcome
            assert queued.time_last_queued == first.time_last_queued, outcome

    def test_caller_times_come_back_exactly(self, broker: Broker) -> None:
        """Every time a caller gives (due times of enqueue, retry, requeue,
        recovery and update_scheduled_time) is stored to the last bit, with
        its microseconds and beyond, and kept when move_due queues the task."""
        now = broker.time()
        times = [now + FAR + 0.000001, now + FAR + 0.1234567, now - 3.000003, now + 7.654321]
        broker.enqueue(_req("a", when=times[0]))
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == times[0]
        broker.update_scheduled_time(Q, "a", times[2])
        assert broker.move_due(Q, 10) == 1
        assert broker.get_task(Q, State.QUEUED, "a").ts == times[2]
        assert broker.get_task(Q, State.QUEUED, "a").scheduled_at == times[2]
        (popped,) = broker.pop(Q, 1, "w1", FAR)
        assert broker.finish(Q, "a", "w1", "retry", when=times[1])
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == times[1]
        broker.update_scheduled_time(Q, "a", times[2])
        assert broker.move_due(Q, 10) == 1
        (popped,) = broker.pop(Q, 1, "w1", FAR)
        assert broker.finish(Q, "a", "w1", "requeue", when=times[3])
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == times[3]
        broker.update_scheduled_time(Q, "a", times[2])
        assert broker.move_due(Q, 10) == 1
        (popped,) = broker.pop(Q, 1, "w1", FAR)
        assert broker.recover_expired(Q, "a", popped.ts + 1, "retry", when=times[0])
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == times[0]

    def test_finish_retry_in_the_past_is_due(self, broker: Broker) -> None:
        """A retry time already past leaves the task scheduled but due: move_due
        queues it at once."""
        _activate(broker, "a")
        when = broker.time() - 5
        assert broker.finish(Q, "a", "w1", "retry", when=when, execution=_execution(1))
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == when
        assert broker.move_due(Q, 10) == 1
        assert broker.get_task(Q, State.QUEUED, "a").ts == when

    def test_finish_error_moves_to_error_with_record(self, broker: Broker) -> None:
        """error moves the task to error with score now and appends its record."""
        _activate(broker, "a")
        before = broker.time()
        assert broker.finish(Q, "a", "w1", "error", execution=_execution(1, retry=False))
        after = broker.time()
        task = broker.get_task(Q, State.ERROR, "a", load_executions=1)
        assert _between(task.ts, before, after)
        assert task.executions == [_execution(1, retry=False)]
        assert task.executions_count == 1
        assert Q in broker.queues(State.ERROR)
        assert _states_of(broker, Q, "a") == {State.ERROR}

    def test_finish_requeue_now_is_queued_without_counting(self, broker: Broker) -> None:
        """requeue without ``when`` queues the task at now; without an execution
        record the count does not change."""
        _activate(broker, "a")
        _drain_activity(broker)
        before = broker.time()
        assert broker.finish(Q, "a", "w1", "requeue")
        after = broker.time()
        task = broker.get_task(Q, State.QUEUED, "a")
        assert _between(task.ts, before, after)
        assert task.executions_count == 0
        assert _announced(broker, Q)

    def test_finish_requeue_future_is_scheduled(self, broker: Broker) -> None:
        """requeue with a future ``when`` schedules the task at ``when``."""
        _activate(broker, "a")
        when = broker.time() + 42.5
        assert broker.finish(Q, "a", "w1", "requeue", when=when)
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == when
        assert _states_of(broker, Q, "a") == {State.SCHEDULED}

    def test_executions_are_trimmed_but_counted(self, broker: Broker) -> None:
        """max_stored_executions keeps the newest records; the count goes on."""
        _fail_n_times(broker, "a", 5, max_stored=2)
        task = broker.get_task(Q, State.QUEUED, "a", load_executions=100)
        assert task.executions == [_execution(4), _execution(5)]
        assert task.executions_count == 5
        assert broker.executions_count(Q, "a") == 5

    def test_executions_unlimited_with_zero_or_none(self, broker: Broker) -> None:
        """max_stored_executions of 0 or None keeps every record."""
        _fail_n_times(broker, "zero", 4, max_stored=0)
        _fail_n_times(broker, "none", 4, max_stored=None, queue=OTHER)
        expected = [_execution(n) for n in range(1, 5)]
        assert broker.get_task(Q, State.QUEUED, "zero", load_executions=10).executions == expected
        assert (
            broker.get_task(OTHER, State.QUEUED, "none", load_executions=10).executions == expected
        )

    def test_executions_follow_the_latest_cap(self, broker: Broker) -> None:
        """Each failure trims to the cap it is given: a lower cap later drops
        more of the oldest records; a higher one (or none) does not bring back
        what was dropped."""
        _fail_n_times(broker, "a", 4, max_stored=3)
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["a"]
        assert broker.finish(
            Q, "a", "w1", "requeue", execution=_execution(5), max_stored_executions=1
        )
        assert broker.get_task(Q, State.QUEUED, "a", load_executions=10).executions == [
            _execution(5)
        ]
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["a"]
        assert broker.finish(Q, "a", "w1", "error", execution=_execution(6))
        task = broker.get_task(Q, State.ERROR, "a", load_executions=10)
        assert task.executions == [_execution(5), _execution(6)]
        assert task.executions_count == 6

    def test_execution_records_round_trip_every_value(self, broker: Broker) -> None:
        """An execution record comes back as it was given: keys the contract
        does not name, unicode, None, booleans, 64-bit integers, floats to the
        last bit, empty strings and nested lists and maps."""
        extra: dict[str, Any] = {
            "custom": {"nested": [1, [2, {"deep": None}]], "empty": {}, "list": []},
            "unicode": "fehlgeschlagen: ünïcødé ✓ 子",
            "none": None,
            "flags": [True, False],
            "big": 2**63 - 1,
            "negative": -(2**63),
            "float": 0.1 + 0.2,
            "tiny": 5e-324,
            "blank": "",
        }
        record = cast(Execution, {**_execution(1), **extra})
        _activate(broker, "a")
        assert broker.finish(Q, "a", "w1", "error", execution=record)
        (stored,) = broker.get_task(Q, State.ERROR, "a", load_executions=1).executions
        assert stored == record
        as_read: dict[str, Any] = dict(stored)
        assert type(as_read["custom"]["nested"]) is list

    def test_load_executions_gives_newest_oldest_first(self, broker: Broker) -> None:
        """load_executions=n returns the newest n records, oldest first; 0 none."""
        _fail_n_times(broker, "a", 3)
        assert broker.get_task(Q, State.QUEUED, "a").executions == []
        assert broker.get_task(Q, State.QUEUED, "a", load_executions=2).executions == [
            _execution(2),
            _execution(3),
        ]
        _total, tasks = broker.list_tasks(Q, State.QUEUED, load_executions=1)
        assert tasks[0].executions == [_execution(3)]

    # -- unique twins and finish -----------------------------------------------
    def test_done_with_pending_twin_keeps_data_resets_records(self, broker: Broker) -> None:
        """When a run succeeds while its pending twin waits, the twin keeps the
        data; the earlier failure records are cleared."""
        _fail_n_times(broker, "u", 2)
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["u"]
        broker.enqueue(_req("u", unique=True, payload=b"next"))
        assert broker.finish(Q, "u", "w1", "done")
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        task = broker.get_task(Q, State.QUEUED, "u", load_executions=10)
        assert task.payload == b"next"
        assert task.executions == []
        assert task.executions_count == 0

    def test_error_with_pending_twin_keeps_both(self, broker: Broker) -> None:
        """A run that fails while its twin is pending leaves an error copy and
        the pending copy, sharing one data record."""
        _activate(broker, "u", unique=True)
        when = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=when))
        assert broker.finish(Q, "u", "w1", "error", execution=_execution(1))
        assert _states_of(broker, Q, "u") == {State.ERROR, State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == when
        assert broker.executions_count(Q, "u") == 1

    def test_retry_with_later_pending_twin_moves_it_earlier(self, broker: Broker) -> None:
        """retry while a twin is scheduled later keeps one scheduled copy, at
        the earlier (retry) time."""
        _activate(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, when=broker.time() + FAR))
        retry_at = broker.time() + FAR / 2
        assert broker.finish(Q, "u", "w1", "retry", when=retry_at, execution=_execution(1))
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.list_tasks(Q, State.SCHEDULED)[0] == 1
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == retry_at
        assert broker.executions_count(Q, "u") == 1

    def test_retry_with_earlier_pending_twin_keeps_it(self, broker: Broker) -> None:
        """retry while a twin is scheduled earlier keeps that earlier time."""
        _activate(broker, "u", unique=True)
        twin_at = broker.time() + FAR / 2
        broker.enqueue(_req("u", unique=True, when=twin_at))
        assert broker.finish(Q, "u", "w1", "retry", when=twin_at + FAR, execution=_execution(1))
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == twin_at

    def test_retry_with_queued_twin_keeps_one_queued_copy(self, broker: Broker) -> None:
        """retry while a twin is queued leaves just the queued copy."""
        _activate(broker, "u", unique=True)
        queued = broker.enqueue(_req("u", unique=True))
        assert broker.finish(Q, "u", "w1", "retry", when=broker.time() + 60)
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").ts == queued.ts

    def test_requeue_with_pending_twin_does_not_duplicate(self, broker: Broker) -> None:
        """requeue (now or later) while a twin is pending keeps one pending copy
        at the earlier of the two times."""
        _activate(broker, "u", unique=True)
        queued = broker.enqueue(_req("u", unique=True))
        assert broker.finish(Q, "u", "w1", "requeue")
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").ts == queued.ts
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["u"]
        twin_at = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=twin_at))
        assert broker.finish(Q, "u", "w1", "requeue", when=twin_at - 100)
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == twin_at - 100

    def test_earlier_retry_moves_a_queued_twin_ahead(self, broker: Broker) -> None:
        """A retry due before its queued twin's time moves the twin to that
        earlier time: it is listed and pops ahead of tasks of its priority
        queued after that time."""
        _activate(broker, "u", unique=True)
        broker.enqueue(_req("other"))
        time.sleep(0.002)
        broker.enqueue(_req("u", unique=True))
        assert _ids(broker.list_tasks(Q, State.QUEUED)[1]) == ["other", "u"]
        early = broker.time() - 100
        assert broker.finish(Q, "u", "w1", "retry", when=early)
        assert broker.get_task(Q, State.QUEUED, "u").ts == early
        assert _ids(broker.list_tasks(Q, State.QUEUED)[1]) == ["u", "other"]
        assert _ids(broker.pop(Q, 5, "w1", FAR)) == ["u", "other"]

    def test_requeue_with_a_due_scheduled_twin_keeps_it_scheduled(self, broker: Broker) -> None:
        """A run requeued now while its twin is scheduled at an earlier, due
        time is absorbed by the twin, which stays scheduled at its time (it
        is queued by the next move_due, not by the requeue)."""
        _activate(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, when=broker.time() + FAR))
        past = _make_due(broker, "u", ago=50)
        assert broker.finish(Q, "u", "w1", "requeue")
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == past
        assert broker.move_due(Q, 10) == 1
        assert broker.get_task(Q, State.QUEUED, "u").ts == past
