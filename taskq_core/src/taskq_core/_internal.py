"""Small helpers shared by the core: dotted paths, queue names, time."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from taskq_core.exceptions import TaskImportError

__all__ = [
    "dotted_parts",
    "from_timestamp",
    "import_attribute",
    "queue_matches",
    "queue_root",
    "serialize_func",
    "to_timestamp",
]


def serialize_func(func: Any, *, what: str = "task function") -> str:
    """``"module:qualname"`` of an importable callable or class.

    Refuses what a worker could not import again: functions defined in
    ``__main__``, lambdas and functions local to another function.
    """
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        raise ValueError(f"{what} {func!r} has no module or name; use a module-level function")
    if module == "__main__":
        raise ValueError(
            f"{what} {qualname!r} is defined in __main__, which a worker cannot import; "
            "move it into an importable module"
        )
    if "<lambda>" in qualname:
        raise ValueError(
            f"{what} {module}:{qualname} is a lambda, which a worker cannot import; "
            "use a module-level function"
        )
    if "<locals>" in qualname:
        raise ValueError(
            f"{what} {module}:{qualname} is defined inside another function, which a worker "
            "cannot import; move it to module level"
        )
    return f"{module}:{qualname}"


def import_attribute(path: str) -> Any:
    """Import ``"module:qualname"`` (or ``"module.attr"``); ``TaskImportError`` if it fails."""
    if ":" in path:
        module_name, _, qualname = path.partition(":")
    else:
        module_name, _, qualname = path.rpartition(".")
    if not module_name or not qualname:
        raise TaskImportError(f"{path!r} is not a dotted path like 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise TaskImportError(f"cannot import {path!r}: {exc}") from exc
    return obj


def dotted_parts(queue: str) -> Iterator[str]:
    """``"a.b.c"`` -> ``"a"``, ``"a.b"``, ``"a.b.c"``."""
    parts = queue.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def queue_root(queue: str) -> str:
    """The first part of a queue name (``"email"`` for ``"email.incoming.X"``)."""
    return queue.split(".", 1)[0]


def queue_matches(
    queue: str, only: Iterable[str] | None = None, exclude: Iterable[str] | None = None
) -> bool:
    """Whether a worker with these include/exclude lists processes ``queue``.

    The most specific part of the name decides; at one level, exclude beats
    include; a prefix that is not a whole part (``a`` for ``ab``) never matches.
    With no include list every queue not excluded matches.
    """
    if isinstance(only, str) or isinstance(exclude, str):
        raise TypeError("queue lists must be iterables of queue names, not a string")
    only_set = set(only or ())
    exclude_set = set(exclude or ())
    for part in reversed(list(dotted_parts(queue))):
        if part in exclude_set:
            return False
        if part in only_set:
            return True
    return not only_set


def to_timestamp(value: dt.datetime) -> float:
    """A datetime as epoch seconds; naive datetimes are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def from_timestamp(value: float) -> dt.datetime:
    """Epoch seconds as a naive UTC datetime (TaskTiger's convention)."""
    return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
