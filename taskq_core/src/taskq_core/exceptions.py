"""The exceptions taskq raises and understands.

Some are ``BaseException`` subclasses on purpose, as in TaskTiger: a task's
``except Exception:`` must not swallow a hard timeout, a retry request or a
full queue.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = [
    "BrokerConnectionError",
    "BrokerError",
    "ConfigError",
    "JobTimeoutException",
    "PluginError",
    "PolicyError",
    "QueueFullException",
    "RetryException",
    "SchemaError",
    "SerializationError",
    "StopRetry",
    "TaskImportError",
    "TaskNotFound",
    "TaskQError",
    "TaskRefused",
    "UnknownBrokerError",
]


class TaskQError(Exception):
    """Base class of taskq's ordinary errors."""


class ConfigError(TaskQError, ValueError):
    """A configuration key is unknown or has the wrong type."""


class PluginError(TaskQError):
    """A plugin failed to load or registered something invalid."""


class UnknownBrokerError(TaskQError, LookupError):
    """No installed plugin provides the broker that was asked for."""


class BrokerError(TaskQError):
    """The broker refused or failed an operation."""


class BrokerConnectionError(BrokerError, ConnectionError):
    """The broker cannot be reached (the worker backs off and retries)."""


class SchemaError(BrokerError):
    """A broker's stored schema cannot be used: it is newer than this taskq
    knows (upgrade taskq), or it is not taskq's. Retrying does not help."""


class SerializationError(TaskQError, TypeError):
    """A task's arguments cannot be encoded; raised before anything is written."""


class TaskNotFound(TaskQError):
    """The task is not in the given queue and state, or its data is missing."""


class TaskRefused(TaskQError, ValueError):
    """A task names a callable a worker must not import or run: one of the
    standard library or a builtin module, or one outside the config key
    ``ALLOWED_TASK_MODULES`` (API decision 18).

    Raised by ``delay()`` before anything is written; a stored task found to
    name one fails with an execution record of this exception, never imported.
    """


class TaskImportError(ImportError):
    """A dotted path (``module:qualname``) could not be imported."""


class PolicyError(TaskQError):
    """A retry policy or schedule misbehaved at run time: it raised, could not
    be loaded, or returned something that is not a delay (or a datetime).
    The task it was asked about fails permanently with a record saying so."""


class StopRetry(Exception):
    """Raised by a retry policy to say: do not retry any more."""


class JobTimeoutException(BaseException):
    """The task ran past its hard timeout (or its worker was lost)."""


class QueueFullException(BaseException):
    """``max_queue_size`` was reached; the task was not enqueued."""


class RetryException(BaseException):
    """Raised inside a task to ask for a retry.

    :param method: a retry policy to use instead of the task's own.
    :param original_traceback: store the traceback of the exception being
        handled when this one was created, instead of this one's.
    :param log_error: when retries run out, ``False`` drops the task quietly
        (a warning is logged) instead of moving it to ``error``.
    """

    def __init__(
        self,
        method: Any = None,
        original_traceback: bool = False,
        log_error: bool = True,
    ) -> None:
        super().__init__()
        self.method = method
        self.log_error = log_error
        self.exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | None = None
        if original_traceback:
            info = sys.exc_info()
            if info[0] is not None and info[1] is not None:
                self.exc_info = (info[0], info[1], info[2])
