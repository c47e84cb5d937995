"""Retry policies and schedules that misbehave at run time (Decision 17), on
the memory broker with real worker runs: the task fails permanently with an
execution record that names the policy and what it did; the worker goes on."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from typing import Any

import policy_tasks as pt
import pytest
import structlog.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskq_core.app
from taskq_core import State, Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker

POLICY_ERROR = "taskq_core.exceptions:PolicyError"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pt.calls.clear()
    pt.SCHEDULE_SCRIPTS.clear()
    monkeypatch.setattr(taskq_core.app, "PERIODIC_TASKS", {})
    yield
    pt.calls.clear()
    pt.SCHEDULE_SCRIPTS.clear()


def errored(tq: TaskQ, task: Task) -> Task:
    return Task.from_id(tq, task.queue, State.ERROR, task.id, load_executions=100)


# -- retry policies -----------------------------------------------------------------


BAD_RESULTS = [
    (math.inf, "inf"),
    (-math.inf, "-inf"),
    (math.nan, "nan"),
    (-1, "-1"),
    (-0.001, "-0.001"),
    ("10", "'10'"),
    (None, "None"),
    (True, "True"),
    ([5], "[5]"),
    ({"seconds": 5}, "{'seconds': 5}"),
    (1e12, "1000000000000.0"),  # due after the year 9999
]


@pytest.mark.parametrize(("value", "shown"), BAD_RESULTS, ids=[s for _, s in BAD_RESULTS])
def test_a_policy_returning_a_bad_delay_fails_the_task_permanently(value: Any, shown: str) -> None:
    """The policy's result is checked in the worker: a task whose policy
    returns something that is not a finite delay >= 0 goes to error after
    this one run, with a record naming the policy and what it returned; the
    worker goes on with the next task."""
    tq = TaskQ(broker=MemoryBroker())
    bad = tq.delay(pt.fail, args=["bad"], retry_method=(pt.follow_plan, [[["return", value]]]))
    good = tq.delay(pt.record, args=["after"])
    tq.run_worker(burst=True)
    assert pt.calls == [("fail", "bad"), ("record", "after")]
    assert tq.get_queue_stats() == {"default": {"error": 1}}
    (record,) = errored(tq, bad).executions
    assert record["exception_name"] == "builtins:ValueError"  # the task's own failure
    message = record["policy_error"]
    assert "retry policy policy_tasks:follow_plan" in message
    assert f"returned {shown}" in message
    assert "failed permanently" in message
    assert good.id not in {t.id for t in Task.tasks_from_queue(tq, "default", "error")[1]}


@pytest.mark.parametrize("name", sorted(pt.ERRORS))
def test_a_policy_that_raises_fails_the_task_permanently(name: str) -> None:
    """A policy raising anything but StopRetry (SystemExit included) fails the
    task permanently with a record saying what it raised; the worker survives."""
    tq = TaskQ(broker=MemoryBroker())
    bad = tq.delay(pt.fail, args=["bad"], retry_method=(pt.raises, [name]))
    tq.delay(pt.record, args=["after"])
    tq.run_worker(burst=True)
    assert pt.calls == [("fail", "bad"), ("record", "after")]
    (record,) = errored(tq, bad).executions
    message = record["policy_error"]
    assert f"retry policy policy_tasks:raises('{name}') raised {name}" in message
    assert "the policy broke" in message


def test_a_policy_that_cannot_be_loaded_fails_the_task_permanently() -> None:
    """A stored policy whose module is gone: error with a record that says so."""
    tq = TaskQ(broker=MemoryBroker())
    task = Task(tq, pt.fail, args=["gone"], retry=True)
    task.data["retry_method"] = ["no_such_module_here:policy", []]
    task.delay()
    tq.run_worker(burst=True)
    (record,) = errored(tq, task).executions
    assert "retry policy no_such_module_here:policy could not be loaded" in record["policy_error"]


@pytest.mark.parametrize("log_error", [True, False])
def test_retry_exception_with_a_misbehaving_method(log_error: bool) -> None:
    """``RetryException(method=...)`` whose method returns NaN: the task fails
    permanently with a record (even with ``log_error=False``, which would
    otherwise drop it quietly once retries run out)."""
    tq = TaskQ(broker=MemoryBroker())
    task = tq.delay(pt.ask_retry, args=[log_error])
    tq.run_worker(burst=True)
    (record,) = errored(tq, task).executions
    assert "retry policy policy_tasks:returns(nan) returned nan" in record["policy_error"]


def test_a_lost_task_whose_policy_misbehaves_fails_with_a_record() -> None:
    """Crash recovery (Decision 2) goes through the same checked decision: a
    task whose worker died and whose policy returns inf is failed with the
    "worker lost" record, which names the policy; the worker goes on."""
    now = [time.time()]
    broker = MemoryBroker(clock=lambda: now[0])
    tq = TaskQ(broker=broker, config={"ACTIVE_TASK_UPDATE_TIMEOUT": 10})
    task = tq.delay(pt.fail, args=["lost"], retry_method=(pt.returns, [math.inf]))
    (popped,) = broker.pop("default", 1, "a-worker-that-dies", 1.0)
    assert popped.id == task.id
    now[0] += 60
    tq.delay(pt.record, args=["after"])
    tq.run_worker(burst=True)
    assert pt.calls == [("record", "after")]
    (record,) = errored(tq, task).executions
    assert record["exception_name"] == "taskq_core.exceptions:JobTimeoutException"
    assert "retry policy policy_tasks:returns(inf) returned inf" in record["policy_error"]
    assert tq.get_queue_stats() == {"default": {"error": 1}}


def test_a_good_policy_still_retries() -> None:
    """A valid delay (0 here, so the burst worker runs the retry) retries as
    before and leaves no policy_error in the records."""
    tq = TaskQ(broker=MemoryBroker())
    plan = [["return", 0], ["return", 0.0]]
    task = tq.delay(pt.fail, args=["x"], retry_method=(pt.follow_plan, [plan]))
    tq.run_worker(burst=True)
    records = errored(tq, task).executions
    assert len(records) == 3
    assert not any("policy_error" in r for r in records)


# -- the property test ----------------------------------------------------------------

#: a valid delay: the test broker's clock is ahead of the worker's by more, so
#: every retry is due at once and the burst worker runs it
valid_delays = st.one_of(
    st.integers(min_value=0, max_value=10**5),
    st.floats(min_value=0, max_value=1e5, allow_nan=False),
)
bad_values = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, 1e12, 1e300, True, False, None]),
    st.floats(max_value=-1e-9, allow_nan=False),
    st.integers(min_value=-(2**63), max_value=-1),  # what msgpack can store
    st.text(max_size=5),
    st.lists(st.integers(min_value=0, max_value=100), max_size=2),
    st.binary(max_size=3),
)
steps = st.one_of(
    valid_delays.map(lambda d: ["return", d]),
    bad_values.map(lambda v: ["return", v]),
    st.sampled_from(sorted(pt.ERRORS)).map(lambda name: ["raise", name]),
    st.just(["stop"]),
)


def expected_outcome(plan: list[list[Any]]) -> tuple[int, bool]:
    """(runs, whether the last record has a policy_error) for a task that
    always fails under ``follow_plan(plan)``."""
    for number, step in enumerate(plan, start=1):
        if step[0] == "stop":
            return number, False
        if step[0] == "raise":
            return number, True
        value = step[1]
        valid = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0 <= value <= 1e5
        )
        if not valid:
            return number, True
    return len(plan) + 1, False


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=st.lists(st.lists(steps, max_size=4), min_size=1, max_size=4))
def test_any_policy_behaviour_leaves_the_worker_running_and_loses_no_task(
    plans: list[list[list[Any]]],
) -> None:
    """Tasks that always fail, each with a policy drawn from a strategy that
    returns valid delays, inf, NaN, negatives, huge numbers and non-numbers,
    raises (SystemExit included) or stops: the worker never dies, every task
    ends in error after exactly the runs its policy allows, its last record
    says whether the policy misbehaved, and a good task queued after them runs."""
    pt.calls.clear()
    broker = MemoryBroker(clock=lambda: time.time() + 10**6)
    tq = TaskQ(broker=broker)
    tasks = [
        tq.delay(pt.fail, args=[str(i)], retry_method=(pt.follow_plan, [plan]))
        for i, plan in enumerate(plans)
    ]
    tq.delay(pt.record, args=["good"])
    tq.run_worker(burst=True)
    assert ("record", "good") in pt.calls
    assert tq.get_queue_stats() == {"default": {"error": len(tasks)}}
    for task, plan in zip(tasks, plans, strict=True):
        runs, misbehaved = expected_outcome(plan)
        stored = errored(tq, task)
        assert stored.n_executions() == runs, plan
        assert ("policy_error" in stored.executions[-1]) == misbehaved, plan
        assert not any("policy_error" in r for r in stored.executions[:-1])


# -- schedules -----------------------------------------------------------------------

BAD_SCHEDULE_STEPS = [
    (["raise", "ValueError"], "raised ValueError: the schedule broke"),
    (["raise", "SystemExit"], "raised SystemExit: the schedule broke"),
    (["return", "tomorrow"], "returned 'tomorrow'"),
    (["return", 1893456000.0], "returned 1893456000.0"),
    (["return", 0], "returned 0"),
    (["return", dt.date(2030, 1, 1)], "returned datetime.date(2030, 1, 1)"),
]


@pytest.mark.parametrize(
    ("step", "shown"), BAD_SCHEDULE_STEPS, ids=[s for _, s in BAD_SCHEDULE_STEPS]
)
def test_a_schedule_that_misbehaves_fails_the_periodic_task(step: list[Any], shown: str) -> None:
    """A periodic task's schedule is called again when the task is about to
    run; if it raises or returns something that is neither a datetime nor
    None, that task goes to error (without running) with a record naming the
    schedule and what it did, and the worker goes on."""
    pt.SCHEDULE_SCRIPTS["job"] = [["now"], step]
    tq = TaskQ(broker=MemoryBroker())
    tq.task(schedule=(pt.scripted_schedule, ["job"]))(pt.periodic_job)
    tq.run_worker(burst=True)
    assert pt.calls == []
    _, (task,) = Task.tasks_from_queue(tq, "default", State.ERROR, load_executions=5)
    (record,) = task.executions
    assert record["exception_name"] == POLICY_ERROR
    message = record["policy_error"]
    assert "schedule policy_tasks:scripted_schedule('job')" in message
    assert shown in message
    assert "PolicyError: schedule policy_tasks:scripted_schedule(" in record["traceback"]
    assert tq.get_queue_stats() == {"default": {"error": 1}}


def test_a_schedule_returning_none_ends_the_series_quietly() -> None:
    """``None`` means "no more runs": the task runs and nothing is queued next."""
    pt.SCHEDULE_SCRIPTS["job"] = [["now"], ["return", None]]
    tq = TaskQ(broker=MemoryBroker())
    tq.task(schedule=(pt.scripted_schedule, ["job"]))(pt.periodic_job)
    tq.run_worker(burst=True)
    assert pt.calls == ["periodic_job"]
    assert tq.get_queue_stats() == {}


@pytest.mark.parametrize("step", [["raise", "SystemExit"], ["return", 1893456000.0]])
def test_a_schedule_that_misbehaves_at_worker_start_is_logged(step: list[Any]) -> None:
    """At worker start there is no task to fail yet: the worker logs which
    periodic task could not be queued, and why, then runs normally."""
    pt.SCHEDULE_SCRIPTS["job"] = [step]
    tq = TaskQ(broker=MemoryBroker())
    tq.task(schedule=(pt.scripted_schedule, ["job"]))(pt.periodic_job)
    tq.delay(pt.record, args=["other"])
    with structlog.testing.capture_logs() as logs:
        tq.run_worker(burst=True)
    assert pt.calls == [("record", "other")]
    (error,) = [e for e in logs if e["event"] == "could not queue periodic task"]
    assert error["func"] == "policy_tasks:periodic_job"
    assert "schedule policy_tasks:scripted_schedule('job')" in error["error"]
    assert tq.get_queue_stats() == {}
