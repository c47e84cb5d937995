"""The retry decision for a failed run, as a pure function of task, record and count."""

from __future__ import annotations

import tasks_fixture as tf

from taskq_core import Task, TaskQ, fixed
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.outcome import decide_retry, finish_outcome
from taskq_core.retry import serialize_retry_method

NOW = 1_000_000.0


def app() -> TaskQ:
    return TaskQ(broker=MemoryBroker(), config={"DEFAULT_RETRY_METHOD": fixed(7, 2)})


def record(name: str, **extra: object) -> dict[str, object]:
    return {"exception_name": name, "success": False, **extra}


def test_no_retry_options_means_error() -> None:
    """A task without retry options goes to error."""
    tq = app()
    task = Task(tq, tf.record)
    decision = decide_retry(tq, task, record("builtins:ValueError"), 1, NOW)
    assert (decision.outcome, decision.when, finish_outcome(decision)) == ("error", None, "error")


def test_retry_true_uses_the_default_policy_until_it_stops() -> None:
    """retry=True: DEFAULT_RETRY_METHOD's delay after the finish time, then error."""
    tq = app()
    task = Task(tq, tf.record, retry=True)
    assert decide_retry(tq, task, record("builtins:ValueError"), 2, NOW).when == NOW + 7
    assert decide_retry(tq, task, record("builtins:ValueError"), 3, NOW).outcome == "error"


def test_retry_on_matches_subclasses_only() -> None:
    """retry_on retries a listed class or a subclass of it; others go to error;
    an exception name that cannot be imported never matches."""
    tq = app()
    task = Task(tq, tf.record, retry_on=[LookupError], retry_method=fixed(1, 5))
    assert decide_retry(tq, task, record("builtins:KeyError"), 1, NOW).outcome == "retry"
    assert decide_retry(tq, task, record("builtins:ValueError"), 1, NOW).outcome == "error"
    assert decide_retry(tq, task, record("gone.module:Error"), 1, NOW).outcome == "error"


def test_retry_exception_options() -> None:
    """A RetryException record retries even without retry options, with its own
    method when given; log_error=False drops the task when retries run out."""
    tq = app()
    task = Task(tq, tf.record)
    own = record(
        "taskq_core.exceptions:RetryException",
        retry=True,
        retry_method=serialize_retry_method(fixed(3, 1)),
    )
    assert decide_retry(tq, task, own, 1, NOW).when == NOW + 3
    assert decide_retry(tq, task, own, 2, NOW).outcome == "error"
    quiet = record("taskq_core.exceptions:RetryException", retry=True, log_error=False)
    dropped = decide_retry(tq, task, quiet, 3, NOW)
    assert (dropped.outcome, dropped.log_error) == ("done", False)
