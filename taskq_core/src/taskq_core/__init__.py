"""taskq: a Python task queue with pluggable brokers.

The public face: the app object, tasks, policies, exceptions and the hook
marker. Everything else lives in submodules.
"""

from __future__ import annotations

from taskq_core.app import TaskQ
from taskq_core.broker import Broker
from taskq_core.exceptions import (
    BrokerConnectionError,
    JobTimeoutException,
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
