"""What happens to a failed run: TaskTiger's retry decision, as a pure function.

User policies run here, in the worker, so everything they do is checked
(Decision 17): a retry policy that raises, cannot be loaded, or returns
something that is not a finite delay of seconds >= 0 fails the task
permanently with a ``policy_error`` in its execution record; a schedule that
raises or returns neither a datetime nor ``None`` is a :class:`PolicyError`
for the worker to record the same way.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from typing import TYPE_CHECKING, Any

from taskq_core._internal import import_attribute
from taskq_core.broker import Execution
from taskq_core.exceptions import PolicyError, StopRetry, TaskImportError, TaskRefused
from taskq_core.retry import load_retry_method, serialize_retry_method
from taskq_core.schedule import load_schedule, serialize_schedule
from taskq_core.states import Outcome

if TYPE_CHECKING:
    from taskq_core.task import Task
    from taskq_core.types import App

__all__ = [
    "PERMANENT_FAILURE",
    "Decision",
    "checked_delay",
    "decide_retry",
    "describe_policy",
    "finish_outcome",
    "next_run",
]

#: the latest due time a task can have: datetimes end with the year 9999.
LATEST_DUE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp()
#: what a record's ``policy_error`` ends with.
PERMANENT_FAILURE = "the task failed permanently"
_SHOWN = 200


class Decision:
    """What to do with a failed run: ``retry`` at ``when``, ``error``, or
    ``done`` (dropped: ``RetryException(log_error=False)`` ran out)."""

    __slots__ = ("log_error", "outcome", "when")

    def __init__(self, outcome: Outcome, when: float | None = None, log_error: bool = True) -> None:
        self.outcome = outcome
        self.when = when
        self.log_error = log_error

    def __repr__(self) -> str:
        return f"Decision({self.outcome!r}, when={self.when!r}, log_error={self.log_error!r})"


def _shown(value: Any) -> str:
    """``repr(value)``, cut short (a policy may return anything)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object with a broken repr>"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def describe_policy(spec: Any) -> str:
    """A policy (or its stored ``[path, [args...]]`` spec) as users wrote it:
    ``module:function``, with its arguments when it has some."""
    if isinstance(spec, str):
        return spec
    if not (isinstance(spec, list | tuple) and len(spec) == 2 and isinstance(spec[0], str)):
        try:
            spec = serialize_retry_method(spec)
        except Exception:
            return _shown(spec)
    if isinstance(spec[1], list | tuple):
        path: str = spec[0]
        args = spec[1]
        return path + (f"({', '.join(_shown(a) for a in args)})" if args else "")
    return _shown(spec)


def _raised(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def checked_delay(value: Any, now: float) -> float | str:
    """``value`` as a delay in seconds from ``now``, or why it is not one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "which is not a number of seconds"
    delay = float(value)
    if math.isnan(delay) or math.isinf(delay) or delay < 0:
        return "which is not a finite number of seconds >= 0"
    if now + delay > LATEST_DUE:
        return "a delay that ends after the year 9999"
    return delay


def _call_retry_method(spec: Any, retry_number: int, now: float, allowed: Any) -> float:
    """The checked delay from a policy; ``StopRetry`` to stop; ``PolicyError``
    saying what went wrong if the policy misbehaves."""
    name = describe_policy(spec)
    try:
        if isinstance(spec, list | tuple):
            method = load_retry_method(spec, allowed_modules=allowed)
        else:
            method = spec
    except Exception as exc:
        raise PolicyError(f"retry policy {name} could not be loaded: {_raised(exc)}") from exc
    try:
        value = method(retry_number)
    except StopRetry:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a policy never ends the worker
        raise PolicyError(
            f"retry policy {name} raised {_raised(exc)} for retry {retry_number}"
        ) from exc
    delay = checked_delay(value, now)
    if isinstance(delay, str):
        raise PolicyError(
            f"retry policy {name} returned {_shown(value)} for retry {retry_number}, {delay}"
        )
    return delay


def next_run(schedule: Any, now: dt.datetime) -> dt.datetime | None:
    """The next run of a periodic task after ``now`` (naive UTC): what
    ``schedule`` returns, checked. Raises :class:`PolicyError` saying what
    went wrong if the schedule cannot be loaded, raises, or returns something
    that is neither a datetime nor ``None``."""
    try:
        name = describe_policy(serialize_schedule(schedule))
    except Exception:
        name = describe_policy(schedule)
    try:
        spec = schedule if callable(schedule) else load_schedule(schedule)
    except Exception as exc:
        raise PolicyError(f"schedule {name} could not be loaded: {_raised(exc)}") from exc
    try:
        when = spec(now)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise PolicyError(f"schedule {name} raised {_raised(exc)}") from exc
    if when is None:
        return None
    if not isinstance(when, dt.datetime):
        raise PolicyError(
            f"schedule {name} returned {_shown(when)}, which is neither a datetime nor None"
        )
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


#: the exception name of a refused task's record (API decision 18)
_REFUSED = f"{TaskRefused.__module__}:{TaskRefused.__qualname__}"


def decide_retry(
    tq: App, task: Task, execution: Execution, retry_number: int, now: float
) -> Decision:
    """TaskTiger's retry decision for a failed run.

    ``retry_number`` counts failed executions including this one. A policy
    that misbehaves (Decision 17) means ``error``, and ``execution`` (the
    record about to be stored) gets a ``policy_error`` that names the policy
    and what it did. A task that was refused (Decision 18) goes to
    ``error``: its retry method is never imported.
    """
    try:
        task.check_allowed()
    except TaskRefused:
        return Decision("error", None, True)
    if execution.get("exception_name") == _REFUSED:
        return Decision("error", None, True)
    log_error = True
    method: Any = None
    if execution.get("retry"):
        method = (
            execution.get("retry_method") or task.retry_method or tq.config["DEFAULT_RETRY_METHOD"]
        )
        log_error = bool(execution.get("log_error", True))
    elif task.retry_method:
        if task.retry_on:
            try:
                exc_class = import_attribute(str(execution.get("exception_name", "")))
                should = isinstance(exc_class, type) and task.should_retry_on(exc_class)
            except TaskImportError:
                should = False
            if should:
                method = task.retry_method
        else:
            method = task.retry_method
    if method is not None:
        try:
            delay = _call_retry_method(
                method, max(retry_number, 1), now, tq.config["ALLOWED_TASK_MODULES"]
            )
        except StopRetry:
            pass
        except PolicyError as exc:
            message = f"{exc}; {PERMANENT_FAILURE}"
            execution["policy_error"] = message
            tq.log.error("retry policy failed", task_id=task.id, policy_error=message)
            return Decision("error", None, True)
        else:
            return Decision("retry", now + delay, log_error)
    if not log_error:
        return Decision("done", None, False)
    return Decision("error", None, True)


def finish_outcome(decision: Decision) -> Outcome:
    """The broker outcome that carries out ``decision``."""
    return decision.outcome
