"""Batch queues whose pops mix functions and runner classes (Decisions 12 and
13), on the memory broker: every popped task runs exactly once, group by
group in order of first appearance, grouped by function and runner class;
plain tasks run and end on their own; nothing is left ``active``."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import mixed_batch_tasks as mb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskq_core.app
from taskq_core import State, Task, TaskQ, hookimpl
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.plugins import get_plugin_manager


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    mb.calls.clear()
    monkeypatch.setattr(taskq_core.app, "PERIODIC_TASKS", {})
    yield
    mb.calls.clear()


def batch_app(size: int) -> TaskQ:
    return TaskQ(broker=MemoryBroker(), config={"BATCH_QUEUES": {"mix": size}})


def enqueue(tq: TaskQ, kinds: list[str]) -> list[Task]:
    tasks = []
    for i, kind in enumerate(kinds):
        func, runner = mb.KINDS[kind]
        tasks.append(tq.delay(func, args=[i], queue="mix", runner_class=runner))
    return tasks


def expected_calls(tasks: list[Task], kinds: list[str], size: int) -> list[Any]:
    """The calls a worker makes for ``tasks`` popped ``size`` at a time: per
    pop, one group per (function, runner class) in order of first appearance;
    a batch function called once per group, a plain one once per task."""
    calls: list[Any] = []
    for start in range(0, len(tasks), size):
        groups: dict[tuple[str, str], list[str]] = {}
        chunk = zip(tasks[start : start + size], kinds[start : start + size], strict=True)
        for task, kind in chunk:
            func, runner = mb.KINDS[kind]
            key = (func.__name__, runner.__name__ if runner else "DefaultRunner")
            groups.setdefault(key, []).append(task.id)
        for (name, runner_name), ids in groups.items():
            if name.startswith("batch"):
                calls.append((name, ids, runner_name))
            else:
                calls.extend((name, [task_id], runner_name) for task_id in ids)
    return calls


def test_mixed_pops_run_every_task_once_group_by_group() -> None:
    """25 tasks of three functions and two runner classes, popped 4 at a time:
    the fetch of the next pop done together with a group's outcomes must not
    replace the one fetched before it. Every task runs once, in its group,
    and the burst worker leaves nothing queued or active."""
    pattern = ["batch_a", "plain", "batch_a/other", "batch_b", "batch_a", "plain_fail"]
    kinds = [pattern[(i * 5) % len(pattern)] for i in range(25)]
    tq = batch_app(4)
    tasks = enqueue(tq, kinds)
    tq.run_worker(burst=True)
    assert mb.calls == expected_calls(tasks, kinds, 4)
    ran = [task_id for _, ids, _ in mb.calls for task_id in ids]
    assert sorted(ran) == sorted(t.id for t in tasks)
    failing = kinds.count("plain_fail")
    assert tq.get_queue_stats() == {"mix": {"error": failing}}


def test_a_batch_call_never_mixes_runner_classes() -> None:
    """Tasks of one batch function with the default runner, with
    ``OtherRunner`` and with ``RecordingRunner`` popped together: three
    batch calls, each made by its own runner with its own tasks."""
    kinds = ["batch_a", "batch_a/other", "batch_a", "batch_a/recording", "batch_a/other"]
    tq = batch_app(10)
    tasks = enqueue(tq, kinds)
    tq.run_worker(burst=True)
    assert mb.calls == [
        ("batch_a", [tasks[0].id, tasks[2].id], "DefaultRunner"),
        ("batch_a", [tasks[1].id, tasks[4].id], "OtherRunner"),
        ("batch_a", [tasks[3].id], "RecordingRunner"),
    ]
    assert tq.get_queue_stats() == {}


def test_plain_tasks_in_a_batch_queue_end_on_their_own() -> None:
    """Decision 12: plain tasks popped together each run and end on their own;
    the one that fails goes to error with one record, the others succeed
    and are not run again."""
    kinds = ["plain", "plain_fail", "plain", "plain/other", "plain_fail"]
    tq = batch_app(10)
    tasks = enqueue(tq, kinds)
    tq.run_worker(burst=True)
    assert mb.calls == expected_calls(tasks, kinds, 10)
    _, errored = Task.tasks_from_queue(tq, "mix", State.ERROR, load_executions=10)
    assert sorted(t.id for t in errored) == sorted([tasks[1].id, tasks[4].id])
    assert all(len(t.executions) == 1 for t in errored)
    assert all(t.executions[0]["exception_name"] == "builtins:ValueError" for t in errored)
    assert tq.get_queue_stats() == {"mix": {"error": 2}}


class StopAfterFirstSuccess:
    """Sends this process SIGTERM when the first task succeeds."""

    def __init__(self) -> None:
        self.sent = False

    @hookimpl
    def taskq_task_succeeded(self, tq: Any, task: Task, duration: float) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def test_stop_returns_the_groups_that_did_not_start() -> None:
    """A stop requested while the first group of a pop runs: that group
    finishes, the groups of the pop that have not started go back to queued
    with no failed run, and nothing stays active."""
    kinds = ["plain", "batch_a", "batch_b", "plain/other"]
    tq = batch_app(10)
    tasks = enqueue(tq, kinds)
    probe = StopAfterFirstSuccess()
    pm = get_plugin_manager()
    pm.register(probe)
    try:
        tq.run_worker(burst=True)
    finally:
        pm.unregister(probe)
    assert mb.calls == [("plain", [tasks[0].id], "DefaultRunner")]
    assert tq.get_queue_sizes("mix") == {"queued": 3, "scheduled": 0, "active": 0}
    _, queued = Task.tasks_from_queue(tq, "mix", State.QUEUED)
    assert sorted(t.id for t in queued) == sorted(t.id for t in tasks[1:])
    assert all(t.n_executions() == 0 for t in queued)


def test_a_worker_exiting_on_a_hard_timeout_returns_the_rest_of_its_pop() -> None:
    """The sync executor exits the worker after a hard timeout; the tasks of
    the pop that had not started go back to queued (not left active), and
    the next worker runs them."""
    tq = batch_app(10)
    slow = tq.delay(mb.plain_too_slow, queue="mix")
    rest = enqueue(tq, ["plain", "batch_a", "batch_a"])
    with pytest.raises(SystemExit):
        tq.run_worker(burst=True, executor="sync")
    assert tq.get_queue_sizes("mix") == {"queued": 3, "scheduled": 0, "active": 0}
    assert Task.from_id(tq, "mix", State.ERROR, slow.id).n_executions() == 1
    mb.calls.clear()
    tq.run_worker(burst=True, executor="sync")
    assert mb.calls == [
        ("plain", [rest[0].id], "DefaultRunner"),
        ("batch_a", [rest[1].id, rest[2].id], "DefaultRunner"),
    ]
    assert tq.get_queue_stats() == {"mix": {"error": 1}}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kinds=st.lists(st.sampled_from(sorted(mb.KINDS)), max_size=24),
    size=st.integers(min_value=1, max_value=7),
)
def test_any_mix_runs_every_task_exactly_once(kinds: list[str], size: int) -> None:
    """Whatever the mix of batch and plain functions and runner classes and
    whatever the batch size: the calls are exactly the expected groups, each
    task runs once, and only the failing plain tasks remain (in error)."""
    mb.calls.clear()
    tq = batch_app(size)
    tasks = enqueue(tq, kinds)
    tq.run_worker(burst=True)
    assert mb.calls == expected_calls(tasks, kinds, size)
    failing = kinds.count("plain_fail")
    assert tq.get_queue_stats() == ({"mix": {"error": failing}} if failing else {})


def test_a_task_with_an_unreadable_runner_class_fails_alone() -> None:
    """A stored task whose runner class is not a name (a list here, as
    corrupted data would have it) is grouped on its own and fails with a
    record; the tasks popped with it run, and the worker goes on."""
    tq = batch_app(10)
    before = enqueue(tq, ["batch_a", "plain"])
    bad = Task(tq, mb.plain, args=[99], queue="mix")
    bad.data["runner_class"] = ["not", "a", "path"]
    bad.delay()
    after = enqueue(tq, ["batch_a"])
    tq.run_worker(burst=True)
    assert mb.calls == [
        ("batch_a", [before[0].id, after[0].id], "DefaultRunner"),
        ("plain", [before[1].id], "DefaultRunner"),
    ]
    (record,) = Task.from_id(tq, "mix", State.ERROR, bad.id, load_executions=1).executions
    assert record["exception_name"]
    assert tq.get_queue_stats() == {"mix": {"error": 1}}
