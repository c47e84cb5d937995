"""Task functions and runners for the mixed-batch tests (a batch queue whose
pops mix batch and plain functions and two runner classes).

Every call is recorded in :data:`calls` as ``(name, [task ids], runner)``,
where ``runner`` is the class name of the runner that made the call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from taskq_core import TaskQ
from taskq_core.runners import DefaultRunner
from taskq_core.task import Task

tq = TaskQ("memory://")

#: ``(function name, [task ids], runner class name)`` per call, in order.
calls: list[tuple[str, list[str], str]] = []
#: the runner class name of the call being made (set by the runners).
_runner: list[str] = []


class RecordingRunner(DefaultRunner):
    """The default runner, saying that it made the call."""

    def run_single_task(self, task: Task, hard_timeout_s: float | None) -> Any:
        _runner.append(type(self).__name__)
        try:
            return super().run_single_task(task, hard_timeout_s)
        finally:
            _runner.pop()

    def run_batch_tasks(self, tasks: Sequence[Task], hard_timeout_s: float | None) -> Any:
        _runner.append(type(self).__name__)
        try:
            return super().run_batch_tasks(tasks, hard_timeout_s)
        finally:
            _runner.pop()


class OtherRunner(RecordingRunner):
    """A second runner class (batches must never mix it with another)."""


def _batch_ids() -> list[str]:
    return [t.id for t in tq.current_tasks]


@tq.task(batch=True)
def batch_a(params: list[dict[str, Any]]) -> None:
    calls.append(("batch_a", _batch_ids(), _runner[-1] if _runner else "DefaultRunner"))


@tq.task(batch=True)
def batch_b(params: list[dict[str, Any]]) -> None:
    calls.append(("batch_b", _batch_ids(), _runner[-1] if _runner else "DefaultRunner"))


@tq.task
def plain(n: int = 0) -> None:
    calls.append(("plain", [tq.current_task.id], _runner[-1] if _runner else "DefaultRunner"))


@tq.task
def plain_fail(n: int = 0) -> None:
    calls.append(("plain_fail", [tq.current_task.id], _runner[-1] if _runner else "DefaultRunner"))
    raise ValueError("plain task failed")


@tq.task(hard_timeout=0.3)
def plain_too_slow(n: int = 0) -> None:
    calls.append(("plain_too_slow", [tq.current_task.id], "DefaultRunner"))
    time.sleep(5)


#: the kinds of task the tests mix: (name, function, runner class or None)
KINDS: dict[str, tuple[Any, Any]] = {
    "batch_a": (batch_a, None),
    "batch_a/other": (batch_a, OtherRunner),
    "batch_a/recording": (batch_a, RecordingRunner),
    "batch_b": (batch_b, None),
    "plain": (plain, None),
    "plain/other": (plain, OtherRunner),
    "plain_fail": (plain_fail, None),
}
