"""structlog integration: the task processor and a ready-made configuration."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from taskq_core.context import current

__all__ = ["setup_structlog", "taskq_processor"]


def taskq_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add ``task_id``, ``task_func`` and ``queue`` to every event logged inside a
    (non-batch) task; outside a task or in a batch it changes nothing."""
    if current.active and not current.is_batch and current.tasks:
        task = current.tasks[0]
        event_dict.setdefault("task_id", task.id)
        event_dict.setdefault("task_func", task.serialized_func)
        event_dict.setdefault("queue", task.queue)
    return event_dict


def _text_key(key: Any) -> Any:
    if isinstance(key, str | int | float | bool) or key is None:
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    return repr(key)


def _plain_keys(value: Any) -> Any:
    """``value`` with every dict key JSON can write (bytes decoded, others repr'd)."""
    if isinstance(value, dict):
        return {_text_key(k): _plain_keys(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_keys(v) for v in value]
    return value


def _json_dumps(event: Any, **kw: Any) -> str:
    """``json.dumps`` that never fails on an event: values it cannot write are
    written as their ``repr``, and dict keys it refuses (bytes, tuples: what
    a damaged task's kwargs may hold) as text."""
    kw.setdefault("default", repr)
    try:
        return json.dumps(event, **kw)
    except (TypeError, ValueError):
        return json.dumps(_plain_keys(event), **kw)


def setup_structlog(
    *, fmt: str = "json", level: int | str = logging.INFO, logger_name: str = "taskq"
) -> None:
    """Configure structlog and stdlib logging for a worker process.

    ``fmt="json"`` (production: one JSON object per line on stderr) or
    ``fmt="console"`` (human-readable, for development).
    """
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    elif fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
    else:
        raise ValueError(f"log format must be 'json' or 'console', got {fmt!r}")
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.filter_by_level,
            taskq_processor,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger(logger_name)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
