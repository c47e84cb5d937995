"""The plugin manager: loading plugins, building the registry, calling hooks.

Plugins are modules (or objects) with :data:`~taskq_core.hookspecs.hookimpl`
functions, published under the ``taskq`` entry-point group. They are loaded
lazily, once per process. taskq's own features come from its built-in plugin
``core`` (:mod:`taskq_core.plugin`), which is loaded through its entry point
like any other, always, and registers through the same hooks.

Two environment variables choose what loads:

``TASKQ_DISABLE_PLUGIN_AUTOLOAD=1``
    load no installed plugin except ``core`` (and those named in ``TASKQ_PLUGINS``);
``TASKQ_PLUGINS=name,name``
    load only these plugins (entry-point names), plus ``core``.

The public names are re-exported by :mod:`taskq_core.plugins`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import pluggy
import structlog

from taskq_core import hookspecs
from taskq_core._registry import _UNKNOWN_SOURCE, ALLOW_LIST_ENV, PluginSource, Registry
from taskq_core.exceptions import PluginError

__all__ = [
    "CORE_DISTRIBUTION",
    "CORE_PLUGIN",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "call_each",
    "call_hook_safely",
    "get_plugin_manager",
    "get_registry",
    "reset_plugin_manager",
]

log = structlog.get_logger("taskq_core.plugins")

#: The entry-point group plugins are published under.
ENTRY_POINT_GROUP = "taskq"
#: The name of the built-in plugin; it always loads.
CORE_PLUGIN = "core"
CORE_DISTRIBUTION = "taskq-core"

DISABLE_AUTOLOAD_ENV = "TASKQ_DISABLE_PLUGIN_AUTOLOAD"


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
    """Load ``core`` (through its entry point, like every other plugin), then
    the selected installed plugins."""
    for entry_point in [_core_entry_point(), *_selected_entry_points()]:
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


def _core_entry_point() -> importlib.metadata.EntryPoint:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=CORE_PLUGIN):
        if _distribution_name(entry_point) == CORE_DISTRIBUTION:
            return entry_point
    raise PluginError(
        f'The entry point "{CORE_PLUGIN}" of {CORE_DISTRIBUTION} (group "{ENTRY_POINT_GROUP}") '
        f"is not installed, so taskq cannot load its own features; reinstall {CORE_DISTRIBUTION} "
        f"(`pip install --force-reinstall {CORE_DISTRIBUTION}`)"
    )


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
        pm.taskq_registry = registry
        return registry


def _fill_registry(pm: _PluginManager, registry: Registry) -> None:
    def refuse_wrapper(impl: pluggy.HookImpl) -> None:
        raise PluginError(
            f"Plugin {pm.source(impl.plugin_name).describe()} implements taskq_register as a "
            "wrapper; implement it as a plain hook"
        )

    @contextmanager
    def as_plugin(impl: pluggy.HookImpl) -> Iterator[None]:
        registry._current = pm.source(impl.plugin_name)
        try:
            yield
        finally:
            registry._current = _UNKNOWN_SOURCE

    def fail(impl: pluggy.HookImpl, exc: Exception) -> None:
        if isinstance(exc, PluginError):
            raise exc
        raise PluginError(
            f"Plugin {pm.source(impl.plugin_name).describe()} failed in taskq_register: "
            f"{type(exc).__name__}: {exc}"
        ) from exc

    call_each(
        pm.hook.taskq_register,
        {"register": registry},
        on_error=fail,
        on_wrapper=refuse_wrapper,
        around=as_plugin,
    )


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

    def log_failure(impl: pluggy.HookImpl, exc: Exception) -> None:
        log.error("hook failed", hook=hook_name, plugin=impl.plugin_name, exc_info=exc)

    return call_each(caller, kwargs, on_error=log_failure)


def call_each(
    caller: pluggy.HookCaller,
    kwargs: Mapping[str, Any],
    *,
    on_error: Callable[[pluggy.HookImpl, Exception], None],
    on_wrapper: Callable[[pluggy.HookImpl], None] | None = None,
    around: Callable[[pluggy.HookImpl], AbstractContextManager[None]] | None = None,
) -> list[Any]:
    """The one loop over a hook's implementations that taskq runs itself.

    Calls each plain implementation in pluggy's order (last registered
    first) with the arguments it asks for, inside ``around(impl)`` when
    given; an exception goes to ``on_error`` (which may raise), a wrapper to
    ``on_wrapper`` (skipped when ``None``). Returns the non-``None`` results.
    """
    results: list[Any] = []
    for impl in reversed(caller.get_hookimpls()):
        if impl.wrapper or impl.hookwrapper:
            if on_wrapper is not None:
                on_wrapper(impl)
            continue
        with around(impl) if around is not None else nullcontext():
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as exc:
                on_error(impl, exc)
                continue
        if result is not None:
            results.append(result)
    return results
