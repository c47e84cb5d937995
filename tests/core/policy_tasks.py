"""Retry policies and schedules that misbehave, and the tasks that use them
(Decision 17). They live at module level so a worker can import them back.

A retry policy here is used in TaskTiger's ``(function, args)`` form, e.g.
``retry_method=(returns, [math.inf])``, so its behaviour travels with the task.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from taskq_core import RetryException, StopRetry

#: what the task functions did, in order.
calls: list[Any] = []

#: exceptions a misbehaving policy raises, by name.
ERRORS: dict[str, type[BaseException]] = {
    "ValueError": ValueError,
    "ZeroDivisionError": ZeroDivisionError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "RecursionError": RecursionError,
    "SystemExit": SystemExit,
}


def returns(retry_number: int, value: Any) -> Any:
    """A retry policy that returns ``value``, whatever it is."""
    return value


def raises(retry_number: int, name: str) -> float:
    """A retry policy that raises the exception named ``name``."""
    raise ERRORS[name]("the policy broke")


def follow_plan(retry_number: int, plan: list[list[Any]]) -> Any:
    """A retry policy that follows ``plan``, one step per retry number:
    ``["return", value]`` returns it, ``["raise", name]`` raises, ``["stop"]``
    raises ``StopRetry``; past the end of the plan it stops."""
    if retry_number > len(plan):
        raise StopRetry("the plan is over")
    step = plan[retry_number - 1]
    if step[0] == "return":
        return step[1]
    if step[0] == "raise":
        raise ERRORS[step[1]]("the policy broke")
    raise StopRetry("the plan says stop")


def fail(key: str = "") -> None:
    """A task that always fails with ``ValueError``."""
    calls.append(("fail", key))
    raise ValueError(f"task {key} failed")


def ask_retry(log_error: bool) -> None:
    """A task that asks for a retry with a policy that returns NaN."""
    calls.append(("ask_retry", log_error))
    raise RetryException(method=(returns, [math.nan]), log_error=log_error)


def record(key: str = "") -> None:
    """A task that succeeds."""
    calls.append(("record", key))


#: the steps :func:`scripted_schedule` takes, per key, one per call.
SCHEDULE_SCRIPTS: dict[str, list[list[Any]]] = {}


def scripted_schedule(now: dt.datetime, key: str) -> Any:
    """A schedule that follows ``SCHEDULE_SCRIPTS[key]``, one step per call:
    ``["now"]`` returns ``now`` (due at once), ``["later", seconds]``,
    ``["return", value]`` returns it, ``["raise", name]`` raises."""
    step = SCHEDULE_SCRIPTS[key].pop(0)
    if step[0] == "now":
        return now
    if step[0] == "later":
        return now + dt.timedelta(seconds=step[1])
    if step[0] == "return":
        return step[1]
    raise ERRORS[step[1]]("the schedule broke")


def periodic_job() -> None:
    """The function the periodic tests declare with ``schedule=``."""
    calls.append("periodic_job")
