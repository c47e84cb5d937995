"""Plugin loading and the registry of brokers, runners, executors and commands.

Plugins are modules (or objects) with :data:`~taskq_core.hookspecs.hookimpl`
functions, published under the ``taskq`` entry-point group. They are loaded
lazily, once per process, by :func:`get_plugin_manager`. taskq's own features
come from its built-in plugin ``core`` (:mod:`taskq_core.plugin`), which
always loads and registers through the same hooks as everyone else.

Two environment variables choose what loads:

``TASKQ_DISABLE_PLUGIN_AUTOLOAD=1``
    load no installed plugin except ``core`` (and those named in ``TASKQ_PLUGINS``);
``TASKQ_PLUGINS=name,name``
    load only these plugins (entry-point names), plus ``core``.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import click
import pluggy
import structlog

from taskq_core import hookspecs
from taskq_core._internal import import_attribute
from taskq_core._registry import (
    _UNKNOWN_SOURCE,
    ALLOW_LIST_ENV,
    BrokerEntry,
    CommandEntry,
    ExecutorEntry,
    PluginSource,
    Registry,
    RunnerEntry,
)
from taskq_core.broker import Broker
from taskq_core.exceptions import ConfigError, PluginError, TaskImportError, UnknownBrokerError

__all__ = [
    "DEFAULT_BROKER_URL",
    "ENTRY_POINT_GROUP",
    "KNOWN_BROKER_DISTRIBUTIONS",
    "BrokerEntry",
    "CommandEntry",
    "ExecutorEntry",
    "PluginInfo",
    "PluginSource",
    "Registry",
    "RunnerEntry",
    "broker_cli_options",
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

log = structlog.get_logger(__name__)

#: The entry-point group plugins are published under.
ENTRY_POINT_GROUP = "taskq"
#: The name of the built-in plugin; it always loads.
CORE_PLUGIN = "core"
CORE_DISTRIBUTION = "taskq-core"
#: The broker used when neither an argument nor ``TASKQ_URL`` names one.
DEFAULT_BROKER_URL = "redis://localhost:6379/0"

DISABLE_AUTOLOAD_ENV = "TASKQ_DISABLE_PLUGIN_AUTOLOAD"

#: Which distribution provides a broker name or URL scheme, for the error
#: message when it is not installed.
KNOWN_BROKER_DISTRIBUTIONS: Mapping[str, str] = {
    "redis": "taskq-redis",
    "rediss": "taskq-redis",
    "unix": "taskq-redis",
    "memory": "taskq-core",
}


# -- the plugin manager -------------------------------------------------------------


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus where each plugin came from and the registry.

    A plugin registered after loading is checked for unknown hooks at once,
    and the registry is rebuilt (lazily) so that what it registers is seen.
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.taskq_sources: dict[str, PluginSource] = {}
        self.taskq_registry: Registry | None = None
        #: the registry being filled (a plugin that asks for the registry
        #: from inside ``taskq_register`` gets this one).
        self.taskq_building: Registry | None = None
        self.taskq_loaded = False

    def register(self, plugin: object, name: str | None = None) -> str | None:
        plugin_name = super().register(plugin, name)
        if self.taskq_loaded and plugin_name is not None:
            try:
                _check_pending(self)
            except PluginError:
                self.unregister(plugin)
                raise
            self.taskq_registry = None
        return plugin_name

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        removed = super().unregister(plugin, name)
        self.taskq_registry = None
        return removed

    def source(self, plugin_name: str) -> PluginSource:
        """Where the plugin ``plugin_name`` came from (name only if unknown)."""
        return self.taskq_sources.get(plugin_name) or PluginSource(plugin_name)


_lock = threading.RLock()
_plugin_manager: _PluginManager | None = None
_loading: _PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, with every selected plugin loaded.

    Created on first use: adds the hook specs, registers ``core``, loads the
    ``taskq`` entry points chosen by ``TASKQ_DISABLE_PLUGIN_AUTOLOAD`` and
    ``TASKQ_PLUGINS``, then checks that every hook implementation matches a
    hook. Raises :class:`~taskq_core.exceptions.PluginError` naming the plugin
    when one fails to import or is invalid (and tries again on the next call).
    """
    return _manager()


def reset_plugin_manager() -> None:
    """Forget the loaded plugins and the registry (for tests); the next use loads again."""
    global _plugin_manager
    with _lock:
        _plugin_manager = None


def _manager() -> _PluginManager:
    global _plugin_manager, _loading
    pm = _plugin_manager
    if pm is not None:
        return pm
    with _lock:
        if _plugin_manager is not None:
            return _plugin_manager
        if _loading is not None:
            # A plugin asked for the manager while being imported: it gets the
            # one being filled (this thread holds the lock).
            return _loading
        _loading = _PluginManager()
        try:
            _load_plugins(_loading)
            _plugin_manager = _loading
        finally:
            _loading = None
        return _plugin_manager


def _load_plugins(pm: _PluginManager) -> None:
    from taskq_core import plugin as core_plugin

    core = PluginSource(CORE_PLUGIN, CORE_DISTRIBUTION, _installed_version(CORE_DISTRIBUTION))
    _register(pm, core_plugin, core)
    for entry_point in _selected_entry_points():
        source = _entry_point_source(entry_point)
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"Error importing plugin {source.describe()}: {type(exc).__name__}: {exc}"
            ) from exc
        _register(pm, plugin, source)
    _check_pending(pm)
    pm.taskq_loaded = True


def _register(pm: _PluginManager, plugin: object, source: PluginSource) -> None:
    try:
        pm.register(plugin, name=source.name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"Plugin {source.describe()} cannot be registered: {exc}") from exc
    pm.taskq_sources[source.name] = source


def _check_pending(pm: _PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        known = sorted(n for n, caller in vars(pm.hook).items() if caller.has_spec())
        unknown = [
            hook_name
            for hook_name, caller in vars(pm.hook).items()
            if not caller.has_spec()
            and any(impl.plugin is exc.plugin for impl in caller.get_hookimpls())
        ]
        if not unknown:
            raise PluginError(f"Plugin {pm.source(name).describe()} is invalid: {exc}") from exc
        hook_name = unknown[0]
        close = difflib.get_close_matches(hook_name, known, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise PluginError(
            f'Plugin {pm.source(name).describe()} implements unknown hook "{hook_name}"{hint}. '
            f"Known hooks: {', '.join(known)}"
        ) from exc


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _allow_list() -> list[str] | None:
    value = os.environ.get(ALLOW_LIST_ENV)
    if value is None:
        return None
    names: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if name and name not in names:
            names.append(name)
    return names


def _distribution_name(entry_point: importlib.metadata.EntryPoint) -> str | None:
    dist = entry_point.dist
    return None if dist is None else str(dist.metadata["Name"])


def _entry_point_source(entry_point: importlib.metadata.EntryPoint) -> PluginSource:
    dist = entry_point.dist
    if dist is None:
        return PluginSource(entry_point.name)
    return PluginSource(entry_point.name, str(dist.metadata["Name"]), dist.version)


def _installed_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The ``taskq`` entry points by name, without the built-in ``core``."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist_name = _distribution_name(entry_point)
        if entry_point.name == CORE_PLUGIN:
            if dist_name == CORE_DISTRIBUTION:
                continue
            raise PluginError(
                f'{_entry_point_source(entry_point).describe()} uses the plugin name "core", '
                "which is reserved for taskq's built-in plugin; rename its entry point"
            )
        other = found.get(entry_point.name)
        if other is not None and _distribution_name(other) != dist_name:
            raise PluginError(
                f'Two distributions declare the plugin "{entry_point.name}": '
                f"{_distribution_name(other)} and {dist_name}; uninstall one of them"
            )
        found[entry_point.name] = entry_point
    return found


def _selected_entry_points() -> list[importlib.metadata.EntryPoint]:
    installed = _installed_entry_points()
    allowed = _allow_list()
    if allowed is not None:
        missing = [name for name in allowed if name != CORE_PLUGIN and name not in installed]
        if missing:
            names = ", ".join(f'"{name}"' for name in missing)
            available = ", ".join([CORE_PLUGIN, *sorted(installed)])
            raise PluginError(
                f"{ALLOW_LIST_ENV} names {names}, which {'is' if len(missing) == 1 else 'are'} "
                f"not installed. Installed plugins: {available}"
            )
        return [installed[name] for name in allowed if name != CORE_PLUGIN]
    if _env_flag(DISABLE_AUTOLOAD_ENV):
        return []
    return [installed[name] for name in sorted(installed)]


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- the registry ---------------------------------------------------------------------


def get_registry() -> Registry:
    """What the loaded plugins registered (``taskq_register`` runs once per plugin set).

    Raises :class:`~taskq_core.exceptions.PluginError` naming the plugin when
    one fails inside ``taskq_register`` or registers a name that is taken.
    """
    pm = _manager()
    registry = pm.taskq_registry
    if registry is not None:
        return registry
    with _lock:
        if pm.taskq_registry is not None:
            return pm.taskq_registry
        if pm.taskq_building is not None:
            return pm.taskq_building
        registry = pm.taskq_building = Registry()
        try:
            _fill_registry(pm, registry)
        finally:
            pm.taskq_building = None
        if not registry.incomplete:
            pm.taskq_registry = registry
        return registry


def _fill_registry(pm: _PluginManager, registry: Registry) -> None:
    for impl in reversed(pm.hook.taskq_register.get_hookimpls()):
        source = pm.source(impl.plugin_name)
        if impl.wrapper or impl.hookwrapper:
            raise PluginError(
                f"Plugin {source.describe()} implements taskq_register as a wrapper; "
                "implement it as a plain hook"
            )
        registry._current = source
        try:
            impl.function(*[{"register": registry}[name] for name in impl.argnames])
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"Plugin {source.describe()} failed in taskq_register: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            registry._current = _UNKNOWN_SOURCE


# -- brokers --------------------------------------------------------------------------


def _scheme_of(spec: str) -> str | None:
    if "://" not in spec:
        return None
    return spec.split("://", 1)[0].lower()


def get_broker_entry(name_or_scheme: str) -> BrokerEntry:
    """The registered broker for a name (``"redis"``), a scheme or a URL.

    Raises :class:`~taskq_core.exceptions.UnknownBrokerError` that lists the
    installed brokers and, when known, the distribution to install.
    """
    registry = get_registry()
    scheme = _scheme_of(name_or_scheme)
    if scheme is not None:
        entry = registry.schemes.get(scheme)
        if entry is None:
            raise UnknownBrokerError(_unknown_broker_message(scheme, is_scheme=True))
        return entry
    entry = registry.brokers.get(name_or_scheme) or registry.schemes.get(name_or_scheme.lower())
    if entry is None:
        raise UnknownBrokerError(_unknown_broker_message(name_or_scheme, is_scheme=False))
    return entry


def make_broker(spec: str | Broker | None = None, **options: Any) -> Broker:
    """Build a broker from a name (``"redis"``), a URL (``"redis://..."``,
    ``"memory://"``) or return a broker instance as is.

    A URL is passed to the broker's factory as ``url=``; ``options`` are
    passed as keyword arguments. ``None`` means env ``TASKQ_URL``, else
    ``redis://localhost:6379/0``.
    """
    if isinstance(spec, Broker):
        if options:
            raise TypeError(f"options {sorted(options)} cannot be applied to a broker instance")
        return spec
    if spec is None:
        spec = os.environ.get("TASKQ_URL") or DEFAULT_BROKER_URL
    if not isinstance(spec, str):
        raise TypeError(f"a broker is a name, a URL or a Broker instance, not {spec!r}")
    entry = get_broker_entry(spec)
    if _scheme_of(spec) is not None:
        broker = entry.factory(url=spec, **options)
    else:
        broker = entry.factory(**options)
    if not isinstance(broker, Broker):
        raise PluginError(
            f'The factory of broker "{entry.name}" (plugin "{entry.plugin}") returned '
            f"{broker!r}, which is not a taskq_core.broker.Broker"
        )
    return broker


def _unknown_broker_message(name: str, *, is_scheme: bool) -> str:
    registry = get_registry()
    if is_scheme:
        head = f'No installed broker handles the URL scheme "{name}://".'
    else:
        head = f'Unknown broker "{name}".'
    installed = ", ".join(
        entry.name + (f" ({', '.join(s + '://' for s in entry.schemes)})" if entry.schemes else "")
        for entry in registry.brokers.values()
    )
    parts = [head, f"Installed brokers: {installed or 'none'}."]
    distribution = KNOWN_BROKER_DISTRIBUTIONS.get(name.lower())
    if distribution is not None:
        parts.append(_install_hint(name, distribution))
    return " ".join(parts)


def _install_hint(name: str, distribution: str) -> str:
    version = _installed_version(distribution)
    if version is None:
        return (
            f'The "{name}" broker is provided by {distribution}: install it with '
            f"`pip install {distribution}`."
        )
    pm = _manager()
    not_loaded = [
        entry_point.name
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if _distribution_name(entry_point) == distribution
        and pm.get_plugin(entry_point.name) is None
    ]
    if not not_loaded:
        return (
            f'The "{name}" broker is provided by {distribution}, and {distribution} {version} '
            f"is installed but does not register it; upgrade {distribution}."
        )
    plugin_names = ", ".join(f'"{n}"' for n in not_loaded)
    if _allow_list() is not None:
        why = f"{ALLOW_LIST_ENV}={os.environ.get(ALLOW_LIST_ENV, '')!r} does not list it"
        fix = f"add {plugin_names} to {ALLOW_LIST_ENV}"
    elif _env_flag(DISABLE_AUTOLOAD_ENV):
        why = f"{DISABLE_AUTOLOAD_ENV} is set"
        fix = f"unset it or set {ALLOW_LIST_ENV} to include {plugin_names}"
    else:
        why = "it was installed after this process loaded its plugins"
        fix = "restart the process"
    return (
        f'The "{name}" broker is provided by {distribution} {version}, which is installed, '
        f"but its plugin {plugin_names} is not loaded because {why}: {fix}."
    )


def broker_cli_options() -> list[click.Parameter]:
    """The click options of every registered broker, for ``taskq worker``.

    An option declared identically by two brokers is listed once; two
    different options that claim the same name or flag are a
    :class:`~taskq_core.exceptions.PluginError`.
    """
    taken: dict[str, tuple[click.Parameter, BrokerEntry]] = {}
    params: list[click.Parameter] = []
    for entry in get_registry().brokers.values():
        for param in entry.cli_options:
            keys = [f"name:{param.name}", *param.opts, *param.secondary_opts]
            clashes = {id(taken[key][0]): taken[key] for key in keys if key in taken}
            if not clashes:
                for key in keys:
                    taken[key] = (param, entry)
                params.append(param)
                continue
            other, other_entry = next(iter(clashes.values()))
            same = (
                len(clashes) == 1
                and other.name == param.name
                and other.opts == param.opts
                and other.secondary_opts == param.secondary_opts
            )
            if not same:
                raise PluginError(
                    f"The CLI option {'/'.join(param.opts)} of broker {entry.name!r} (plugin "
                    f'"{entry.plugin}") clashes with {"/".join(other.opts)} of broker '
                    f'{other_entry.name!r} (plugin "{other_entry.plugin}")'
                )
    return params


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


# -- calling hooks ------------------------------------------------------------------------


def call_hook_safely(hook_name: str, **kwargs: Any) -> list[Any]:
    """Call every implementation of a notification hook; one that raises is
    logged with its plugin's name and the others still run.

    Implementations run in pluggy's order (last registered first); wrappers
    are skipped. Returns the non-``None`` results.
    """
    pm = _manager()
    caller: pluggy.HookCaller | None = getattr(pm.hook, hook_name, None)
    if caller is None or not caller.has_spec():
        raise AttributeError(f"taskq has no hook named {hook_name!r}")
    spec = caller.spec
    if spec is not None:
        missing = [name for name in spec.argnames if name not in kwargs]
        if missing:
            raise TypeError(f"{hook_name} called without argument(s) {', '.join(missing)}")
    results: list[Any] = []
    for impl in reversed(caller.get_hookimpls()):
        if impl.wrapper or impl.hookwrapper:
            continue
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception:
            log.exception("hook failed", hook=hook_name, plugin=impl.plugin_name)
            continue
        if result is not None:
            results.append(result)
    return results


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
