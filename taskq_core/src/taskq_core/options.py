"""The task options, declared once.

Every option a task takes is one :class:`TaskOption` in :data:`TASK_OPTIONS`:
its name, where it may be given (the ``@tq.task`` decorator, the call site —
``tq.delay`` and ``Task(...)`` — or both) and what it means. The decorator,
``tq.delay`` and ``Task(...)`` read their options from here
(:func:`given`), a task's effective value merges the call site over the
decorator (:func:`merged`), and a test checks that each of their signatures
names exactly the options declared for it, so an option cannot be added in
one place and forgotten in another. (The signatures themselves stay written
out: type checkers and users read them.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CALL_SITE",
    "DECORATOR",
    "OPTIONS_ATTR",
    "TASK_OPTIONS",
    "TaskOption",
    "given",
    "merged",
    "names",
]

Where = Literal["decorator", "call site"]
DECORATOR: Where = "decorator"
CALL_SITE: Where = "call site"
_BOTH: frozenset[Where] = frozenset({DECORATOR, CALL_SITE})

#: attribute under which ``@tq.task`` stores a function's options.
OPTIONS_ATTR = "_taskq_options"


@dataclass(frozen=True)
class TaskOption:
    """One task option."""

    name: str
    help: str
    where: frozenset[Where] = _BOTH


TASK_OPTIONS: tuple[TaskOption, ...] = (
    TaskOption("queue", "the queue (default: config DEFAULT_QUEUE)"),
    TaskOption("priority", "higher runs first (-1000..1000, default 0)"),
    TaskOption("hard_timeout", "seconds after which the run is killed"),
    TaskOption("unique", "one pending copy per queue, function and arguments"),
    TaskOption("unique_key", "the keyword arguments that make a unique task unique"),
    TaskOption("lock", "one run at a time per function and arguments"),
    TaskOption("lock_key", "the keyword arguments the lock is taken on"),
    TaskOption("retry", "retry failures with DEFAULT_RETRY_METHOD"),
    TaskOption("retry_on", "exception classes that are retried"),
    TaskOption("retry_method", "the retry policy"),
    TaskOption("max_queue_size", "refuse the enqueue when the queue holds this many"),
    TaskOption("max_stored_executions", "keep at most this many execution records"),
    TaskOption("runner_class", "how the function is called (a class, path or name)"),
    TaskOption("batch", "the function takes a list of calls", frozenset({DECORATOR})),
    TaskOption("schedule", "run periodically (periodic(...) or cron(...))", frozenset({DECORATOR})),
)

_BY_NAME: dict[str, TaskOption] = {option.name: option for option in TASK_OPTIONS}


def names(where: Where) -> tuple[str, ...]:
    """The names of the options that may be given at ``where``, in order."""
    return tuple(option.name for option in TASK_OPTIONS if where in option.where)


def given(values: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """The options of ``where`` found in ``values`` (e.g. a signature's
    ``locals()``) that were given, i.e. are not ``None``."""
    return {name: values[name] for name in names(where) if values.get(name) is not None}


def merged(call_site: Mapping[str, Any], decorator: Mapping[str, Any]) -> dict[str, Any]:
    """Each call-site option's effective value: the call site's when given,
    else the decorator's (``None`` when neither gave it)."""
    return {
        name: call_site[name] if call_site.get(name) is not None else decorator.get(name)
        for name in names(CALL_SITE)
    }


def unknown(keys: Iterable[str]) -> list[str]:
    """The keys that are not task options."""
    return [key for key in keys if key not in _BY_NAME]
