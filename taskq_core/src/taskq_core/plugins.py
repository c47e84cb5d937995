"""Plugins: loading, the registry of brokers, runners, executors and commands,
and calling hooks.

This module is the public face of the plugin layer; the parts live in
:mod:`taskq_core._plugin_manager` (loading, registry, hook calls),
:mod:`taskq_core._registry` (what plugins register) and
:mod:`taskq_core._broker_lookup` (brokers by name or URL).

Two environment variables choose what loads:

``TASKQ_DISABLE_PLUGIN_AUTOLOAD=1``
    load no installed plugin except ``core`` (and those named in ``TASKQ_PLUGINS``);
``TASKQ_PLUGINS=name,name``
    load only these plugins (entry-point names), plus ``core``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from taskq_core._broker_lookup import (
    DEFAULT_BROKER_URL,
    KNOWN_BROKER_DISTRIBUTIONS,
    broker_cli_options,
    get_broker_entry,
    make_broker,
)
from taskq_core._internal import import_attribute
from taskq_core._plugin_manager import (
    CORE_DISTRIBUTION,
    CORE_PLUGIN,
    DISABLE_AUTOLOAD_ENV,
    ENTRY_POINT_GROUP,
    _manager,
    call_each,
    call_hook_safely,
    get_plugin_manager,
    get_registry,
    reset_plugin_manager,
)
from taskq_core._registry import (
    ALLOW_LIST_ENV,
    BrokerEntry,
    CommandEntry,
    ExecutorEntry,
    PluginSource,
    Registry,
    RunnerEntry,
    WorkerEntry,
)
from taskq_core.exceptions import ConfigError, TaskImportError

__all__ = [
    "ALLOW_LIST_ENV",
    "CORE_DISTRIBUTION",
    "CORE_PLUGIN",
    "DEFAULT_BROKER_URL",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "KNOWN_BROKER_DISTRIBUTIONS",
    "BrokerEntry",
    "CommandEntry",
    "ExecutorEntry",
    "PluginInfo",
    "PluginSource",
    "Registry",
    "RunnerEntry",
    "WorkerEntry",
    "broker_cli_options",
    "call_each",
    "call_hook_safely",
    "get_broker_entry",
    "get_executor_factory",
    "get_plugin_manager",
    "get_registry",
    "get_runner_class",
    "make_broker",
    "plugin_infos",
    "reset_plugin_manager",
]


# -- runners and executors --------------------------------------------------------------


def get_runner_class(name_or_path: str) -> type:
    """A runner class by registered name (``"default"``), else by dotted path
    (``"package.module:MyRunner"``).

    Raises :class:`~taskq_core.exceptions.TaskImportError` saying what to do.
    """
    registry = get_registry()
    cached = registry._runner_classes.get(name_or_path)
    if cached is not None:
        return cached
    entry = registry.runners.get(name_or_path)
    target: type | str
    if entry is not None:
        target = entry.runner
        origin = f'runner "{entry.name}" (registered by plugin "{entry.plugin}")'
    elif ":" in name_or_path or "." in name_or_path:
        target = name_or_path
        origin = f"runner {name_or_path!r}"
    else:
        known = ", ".join(sorted(registry.runners)) or "none"
        raise TaskImportError(
            f'Unknown runner "{name_or_path}". Registered runners: {known}. Give a registered '
            'runner name or a dotted path such as "package.module:MyRunner".'
        )
    if isinstance(target, str):
        try:
            target = import_attribute(target)
        except TaskImportError as exc:
            raise TaskImportError(f"cannot load {origin}: {exc}") from exc
    if not isinstance(target, type):
        raise TaskImportError(f"{origin} is {target!r}, not a class")
    registry._runner_classes[name_or_path] = target
    return target


def get_executor_factory(name: str) -> Callable[..., Any]:
    """The factory of the executor registered as ``name``; ``ConfigError`` if none."""
    registry = get_registry()
    entry = registry.executors.get(name)
    if entry is None:
        known = ", ".join(sorted(registry.executors)) or "none"
        raise ConfigError(f'Unknown executor "{name}". Registered executors: {known}')
    return entry.factory


# -- describing plugins -----------------------------------------------------------------------


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin, as ``taskq plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...] = ()
    #: ``(name, schemes)`` of each broker it registers.
    brokers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    runners: tuple[str, ...] = ()
    executors: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": list(self.hooks),
            "brokers": [{"name": name, "schemes": list(schemes)} for name, schemes in self.brokers],
            "runners": list(self.runners),
            "executors": list(self.executors),
            "commands": list(self.commands),
        }


def plugin_infos() -> list[PluginInfo]:
    """Every loaded plugin in load order (``core`` first) with what it provides."""
    pm = _manager()
    registry = get_registry()
    infos: list[PluginInfo] = []
    for name, plugin in pm.list_name_plugin():
        source = pm.source(name)
        hooks = sorted(
            hook_name
            for hook_name, caller in vars(pm.hook).items()
            if any(impl.plugin is plugin for impl in caller.get_hookimpls())
        )
        infos.append(
            PluginInfo(
                name=name,
                distribution=source.distribution,
                version=source.version,
                hooks=tuple(hooks),
                brokers=tuple(
                    (entry.name, entry.schemes)
                    for entry in registry.brokers.values()
                    if entry.plugin == name
                ),
                runners=_names_of(registry.runners.values(), name),
                executors=_names_of(registry.executors.values(), name),
                commands=tuple(
                    entry.command.name or ""
                    for entry in registry.commands.values()
                    if entry.plugin == name
                ),
            )
        )
    return infos


def _names_of(entries: Iterable[RunnerEntry | ExecutorEntry], plugin: str) -> tuple[str, ...]:
    return tuple(entry.name for entry in entries if entry.plugin == plugin)
