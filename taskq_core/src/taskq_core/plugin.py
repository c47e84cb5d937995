"""taskq's built-in plugin ``core``.

It registers core's brokers, runners, executors and CLI commands through the
same ``taskq_register`` hook that third-party plugins implement. It always
loads, even with ``TASKQ_DISABLE_PLUGIN_AUTOLOAD=1``.

Optional parts are imported lazily and only if their module exists:

* executors: ``taskq_core.executors.EXECUTORS`` (a mapping name -> factory);
* CLI commands: ``taskq_core.cli.worker_cmd`` and ``taskq_core.cli.inspect_cmd``,
  each exposing ``COMMANDS`` (a sequence of click commands) or, failing that,
  its public module-level click commands that are not subcommands of another one.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click

from taskq_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from taskq_core.broker import Broker
    from taskq_core.plugins import Registry

__all__ = ["taskq_register"]

#: Modules whose click commands become ``taskq`` subcommands.
COMMAND_MODULES = ("taskq_core.cli.worker_cmd", "taskq_core.cli.inspect_cmd")
EXECUTORS_MODULE = "taskq_core.executors"


def memory_broker(**options: Any) -> Broker:
    """Build the in-process memory broker (imported only when asked for)."""
    from taskq_core._internal import import_attribute

    broker_class = import_attribute("taskq_core.brokers.memory:MemoryBroker")
    broker: Broker = broker_class(**options)
    return broker


@hookimpl(trylast=True)
def taskq_register(register: Registry) -> None:
    """Register the memory broker, the default runner, executors and commands."""
    register.broker("memory", memory_broker, schemes=("memory",))
    register.runner("default", "taskq_core.runners:DefaultRunner")
    executors = _optional_module(EXECUTORS_MODULE)
    if executors is not None:
        for name, factory in dict(getattr(executors, "EXECUTORS", {})).items():
            register.executor(name, factory)
    for module_name in COMMAND_MODULES:
        if _being_imported(module_name):
            # The registry was asked for while this module is still being
            # imported (e.g. to collect broker options): its commands are not
            # defined yet, so this registry is not kept.
            register.incomplete = True
            continue
        module = _optional_module(module_name)
        if module is not None:
            for command in _commands_of(module):
                register.command(command)


def _being_imported(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and bool(getattr(spec, "_initializing", False))


def _optional_module(name: str) -> ModuleType | None:
    """Import ``name``; ``None`` only if that module itself does not exist.

    An import error inside an existing module is a bug and propagates.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _commands_of(module: ModuleType) -> Iterator[click.Command]:
    declared = getattr(module, "COMMANDS", None)
    if declared is not None:
        yield from declared
        return
    found = [
        value
        for name, value in vars(module).items()
        if isinstance(value, click.Command) and not name.startswith("_")
    ]
    nested = {
        id(sub)
        for value in found
        if isinstance(value, click.Group)
        for sub in value.commands.values()
    }
    yield from (command for command in found if id(command) not in nested)
