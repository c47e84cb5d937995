"""taskq's built-in plugin ``core``.

It registers core's memory and SQLite brokers, the default runner, the executors and the
``taskq`` CLI commands through the same ``taskq_register`` hook that
third-party plugins implement, and it is loaded the same way: through its
entry point (group ``taskq``, name ``core``). It always loads, even with
``TASKQ_DISABLE_PLUGIN_AUTOLOAD=1``.

This module sits at the edge of the layers (``docs/architecture.md``): it may
import everything it registers, and nothing below imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskq_core._registry import Registry
from taskq_core.brokers import sqlite
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.cli import db_cmd, inspect_cmd, worker_cmd
from taskq_core.executors import EXECUTORS
from taskq_core.hookspecs import hookimpl
from taskq_core.runners import DefaultRunner
from taskq_core.types import App
from taskq_core.worker import Worker

if TYPE_CHECKING:
    from taskq_core.brokers.sqlite import SQLiteBroker

__all__ = ["memory_broker", "run_worker", "sqlite_broker", "taskq_register"]


def memory_broker(**options: Any) -> MemoryBroker:
    """Build the in-process memory broker."""
    return MemoryBroker(**options)


def sqlite_broker(**options: Any) -> SQLiteBroker:
    """Build the SQLite broker (``url=`` a ``sqlite://`` URL; none: the default file).
    Its modules (and :mod:`sqlite3`) load here, on first use."""
    return sqlite.SQLiteBroker(**options)


def run_worker(
    tq: App, *, burst: bool = False, exit_after: float | None = None, **options: Any
) -> None:
    """``tq.run_worker(...)``: a :class:`~taskq_core.worker.Worker` in this process."""
    Worker(tq, **options).run(burst=burst, exit_after=exit_after)


@hookimpl(trylast=True)
def taskq_register(register: Registry) -> None:
    """Register the memory and SQLite brokers, the default runner, executors
    and commands (``worker``, the inspection commands, ``db``)."""
    register.broker("memory", memory_broker, schemes=("memory",))
    register.broker("sqlite", sqlite_broker, schemes=("sqlite",))
    register.runner("default", DefaultRunner)
    for name, factory in EXECUTORS.items():
        register.executor(name, factory)
    register.worker(run_worker, worker_cmd.run_worker_cli)
    for command in (*worker_cmd.COMMANDS, *inspect_cmd.COMMANDS, *db_cmd.COMMANDS):
        register.command(command)
