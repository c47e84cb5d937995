"""taskq: a Python task queue with pluggable brokers.

The public face: the app object, tasks, policies, exceptions and the hook
marker. Everything else lives in submodules.

The names are loaded on first access, so that importing one layer
(``import taskq_core.states``) does not import the layers above it: see
``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskq_core.app import TaskQ
    from taskq_core.broker import Broker
    from taskq_core.exceptions import (
        BrokerConnectionError,
        JobTimeoutException,
        PolicyError,
        QueueFullException,
        RetryException,
        SerializationError,
        StopRetry,
        TaskImportError,
        TaskNotFound,
        TaskRefused,
    )
    from taskq_core.hookspecs import hookimpl
    from taskq_core.retry import exponential, fixed, linear
    from taskq_core.schedule import cron, periodic
    from taskq_core.states import State
    from taskq_core.task import Task

__all__ = [
    # Brokers
    "Broker",
    # Errors
    "BrokerConnectionError",
    "JobTimeoutException",
    "PolicyError",
    "QueueFullException",
    "RetryException",
    "SerializationError",
    "State",
    "StopRetry",
    "Task",
    "TaskImportError",
    "TaskNotFound",
    # The application
    "TaskQ",
    "TaskRefused",
    # Policies
    "cron",
    "exponential",
    "fixed",
    # Plugins
    "hookimpl",
    "linear",
    "periodic",
]

__version__ = "0.1.0"

#: where each public name is defined
_HOMES: dict[str, str] = {
    "TaskQ": "taskq_core.app",
    "Broker": "taskq_core.broker",
    "State": "taskq_core.states",
    "Task": "taskq_core.task",
    "hookimpl": "taskq_core.hookspecs",
    **dict.fromkeys(("exponential", "fixed", "linear"), "taskq_core.retry"),
    **dict.fromkeys(("cron", "periodic"), "taskq_core.schedule"),
    **dict.fromkeys(
        (
            "BrokerConnectionError",
            "JobTimeoutException",
            "QueueFullException",
            "RetryException",
            "SerializationError",
            "StopRetry",
            "TaskImportError",
            "TaskNotFound",
            "TaskRefused",
            "PolicyError",
        ),
        "taskq_core.exceptions",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'taskq_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
