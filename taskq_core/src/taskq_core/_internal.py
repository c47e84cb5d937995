"""Small helpers shared by the core: dotted paths and time."""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

from taskq_core.exceptions import TaskImportError

__all__ = ["from_timestamp", "import_attribute", "serialize_func", "to_timestamp"]


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


def to_timestamp(value: dt.datetime) -> float:
    """A datetime as epoch seconds; naive datetimes are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def from_timestamp(value: float) -> dt.datetime:
    """Epoch seconds as a naive UTC datetime (TaskTiger's convention)."""
    return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
