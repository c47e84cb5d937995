"""The task options are declared once (``taskq_core.options``): the decorator,
``tq.delay`` and ``Task(...)`` take exactly the options declared for them."""

from __future__ import annotations

import inspect

import pytest

from taskq_core import Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.options import CALL_SITE, DECORATOR, TASK_OPTIONS, given, merged, names

#: parameters of the signatures that are not task options (``connection``:
#: where ``delay`` writes the task, not something stored with it)
NOT_OPTIONS = {
    "self",
    "_func",
    "tq",
    "func",
    "args",
    "kwargs",
    "when",
    "_stored",
    "_data",
    "connection",
}


def _options_of(function: object) -> set[str]:
    return set(inspect.signature(function).parameters) - NOT_OPTIONS  # type: ignore[arg-type]


def test_decorator_takes_exactly_the_decorator_options() -> None:
    """``@tq.task(...)`` names every option declared for the decorator, and no other."""
    assert _options_of(TaskQ.task) == set(names(DECORATOR))


@pytest.mark.parametrize("function", [TaskQ.delay, Task.__init__], ids=["delay", "Task"])
def test_call_sites_take_exactly_the_call_site_options(function: object) -> None:
    """``tq.delay(...)`` and ``Task(...)`` name every call-site option, and no other."""
    assert _options_of(function) == set(names(CALL_SITE))


def test_every_option_is_documented_and_named_once() -> None:
    """Each declared option has a help text and a unique name."""
    declared = [option.name for option in TASK_OPTIONS]
    assert len(declared) == len(set(declared))
    assert all(option.help for option in TASK_OPTIONS)


def test_call_site_overrides_decorator() -> None:
    """A call-site value wins over the decorator's; ``None`` means not given."""
    decorator = given({"queue": "slow", "priority": 5, "batch": True}, DECORATOR)
    chosen = merged(given({"queue": "fast", "priority": None}, CALL_SITE), decorator)
    assert chosen["queue"] == "fast"
    assert chosen["priority"] == 5
    assert "batch" not in chosen  # decorator-only options are not call-site values


def _sample() -> None:
    """A task function for the test below."""


def test_decorator_options_reach_the_task() -> None:
    """Through the public API: decorator options are the task's defaults,
    call-site options override them."""
    tq = TaskQ(broker=MemoryBroker())
    declared = tq.task(queue="slow", priority=5, max_queue_size=10)(_sample)
    task = declared.delay()
    assert (task.queue, task.priority, task.max_queue_size) == ("slow", 5, 10)
    other = tq.delay(_sample, queue="fast", priority=-3)
    assert (other.queue, other.priority, other.max_queue_size) == ("fast", -3, 10)
