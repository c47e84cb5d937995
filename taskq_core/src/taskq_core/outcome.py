"""What happens to a failed run: TaskTiger's retry decision, as a pure function."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskq_core._internal import import_attribute
from taskq_core.broker import Execution, FinishOutcome
from taskq_core.exceptions import StopRetry, TaskImportError, TaskRefused

if TYPE_CHECKING:
    from taskq_core.app import TaskQ
    from taskq_core.task import Task

__all__ = ["Decision", "decide_retry", "finish_outcome"]


class Decision:
    """What to do with a failed run: ``retry`` at ``when``, ``error``, or
    ``done`` (dropped: ``RetryException(log_error=False)`` ran out)."""

    __slots__ = ("log_error", "outcome", "when")

    def __init__(self, outcome: str, when: float | None = None, log_error: bool = True) -> None:
        self.outcome = outcome
        self.when = when
        self.log_error = log_error

    def __repr__(self) -> str:
        return f"Decision({self.outcome!r}, when={self.when!r}, log_error={self.log_error!r})"


#: the exception name of a refused task's record (API decision 18)
_REFUSED = f"{TaskRefused.__module__}:{TaskRefused.__qualname__}"


def _call_retry_method(spec: Any, retry_number: int, allowed: Any) -> float:
    from taskq_core.retry import load_retry_method

    if isinstance(spec, list | tuple):
        method = load_retry_method(spec, allowed_modules=allowed)
    else:
        method = spec
    return float(method(retry_number))


def decide_retry(
    tq: TaskQ, task: Task, execution: Execution, retry_number: int, now: float
) -> Decision:
    """TaskTiger's retry decision for a failed run.

    ``retry_number`` counts failed executions including this one. A task that
    was refused (API decision 18) goes to ``error``: its retry method is never
    imported.
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
                method, max(retry_number, 1), tq.config["ALLOWED_TASK_MODULES"]
            )
            return Decision("retry", now + delay, log_error)
        except StopRetry:
            pass
        except Exception:
            tq.log.exception("could not call retry method", task_id=task.id)
    if not log_error:
        return Decision("done", None, False)
    return Decision("error", None, True)


_OUTCOMES: dict[str, FinishOutcome] = {"retry": "retry", "error": "error", "done": "done"}


def finish_outcome(decision: Decision) -> FinishOutcome:
    """The broker outcome that carries out ``decision``."""
    return _OUTCOMES[decision.outcome]
