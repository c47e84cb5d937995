"""Tasks and apps for the ``taskq`` command-line tests (``--app cli_app:tq``,
``-m cli_app``).

Importing this module with ``TASKQ_CLI_IMPORT_TRACE`` set appends
``imported <pid>`` to that file: the tests see which process imported it.
Tasks leave traces as lines in files under ``$TASKQ_TEST_DIR``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from taskq_core import TaskQ
from taskq_core.brokers.memory import MemoryBroker

_IMPORT_TRACE = os.environ.get("TASKQ_CLI_IMPORT_TRACE")
if _IMPORT_TRACE:
    with open(_IMPORT_TRACE, "a") as _fh:
        _fh.write(f"imported {os.getpid()}\n")

#: fast timings; the broker comes from ``TASKQ_URL`` when first used
FAST = {
    "ACTIVE_TASK_UPDATE_TIMER": 0.2,
    "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
    "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.3,
    "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
    "QUEUE_RESYNC_INTERVAL": 0.3,
    "SELECT_TIMEOUT": 0.1,
    "LOCK_RETRY": 0.1,
    "STATS_INTERVAL": 0,
}

tq = TaskQ(config=FAST)

#: an app whose configuration limits it to the ``appq`` queue (``--app cli_app:only_appq``)
only_appq = TaskQ(config={**FAST, "ONLY_QUEUES": ["appq"]})

#: an app that lets one worker at a time take tasks of ``solo`` and its subqueues
single = TaskQ(config={**FAST, "SINGLE_WORKER_QUEUES": ["solo"]})


#: apps that name their own broker, limited to the ``appq`` queue: the command
#: line's ``--url``/``--broker``/``-h``... replace that broker (Decision 11)
on_memory = TaskQ("memory://", config={**FAST, "ONLY_QUEUES": ["appq"]})
#: ... also when the broker is an object, in use from the start
on_instance = TaskQ(MemoryBroker(), config={**FAST, "ONLY_QUEUES": ["appq"]})


def make_only_appq() -> TaskQ:
    """A factory (``--app cli_app:make_only_appq``): a fresh ``only_appq`` app."""
    return TaskQ(config={**FAST, "ONLY_QUEUES": ["appq"]})


def _trace(name: str, text: str) -> None:
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / name, "a") as fh:
        fh.write(text + "\n")


@tq.task
def add(a: int, b: int) -> int:
    """A task that does nothing visible."""
    return a + b


@tq.task
def fail(message: str = "boom") -> None:
    """A task that always fails with ``ValueError(message)``."""
    raise ValueError(message)


@tq.task
def record(name: str, value: str = "ran") -> None:
    """Append ``value``, the queue it ran from and the pid to the trace file ``name``."""
    _trace(name, f"{value} {tq.current_task.queue} {os.getpid()}")


@tq.task
def span(name: str, seconds: float) -> None:
    """Record ``start``/``end`` with the time, the pid and the parent's pid
    around a sleep."""
    _trace(name, f"start {time.time():.6f} {os.getpid()} {os.getppid()}")
    time.sleep(seconds)
    _trace(name, f"end {time.time():.6f} {os.getpid()} {os.getppid()}")
