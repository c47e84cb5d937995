"""The registry of brokers, runners, executors and CLI commands that plugins
fill through the ``taskq_register`` hook (re-exported by :mod:`taskq_core.plugins`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from taskq_core.broker import Broker
from taskq_core.exceptions import PluginError

if TYPE_CHECKING:
    import click

#: the environment variable that lists the plugins to load
ALLOW_LIST_ENV = "TASKQ_PLUGINS"

__all__ = [
    "ALLOW_LIST_ENV",
    "BrokerEntry",
    "CommandEntry",
    "ExecutorEntry",
    "PluginSource",
    "Registry",
    "RunnerEntry",
    "WorkerEntry",
]


# -- where a plugin comes from ------------------------------------------------------


@dataclass(frozen=True)
class PluginSource:
    """A loaded plugin's name and the distribution that ships it."""

    name: str
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        """``'"redis" (taskq-redis 0.1.0)'``."""
        if self.distribution is None:
            return f'"{self.name}"'
        version = f" {self.version}" if self.version else ""
        return f'"{self.name}" ({self.distribution}{version})'


_UNKNOWN_SOURCE = PluginSource("<unknown>")


# -- the registry -------------------------------------------------------------------


def _is_click(value: object, kind: str) -> bool:
    """``isinstance(value, click.<kind>)`` without importing click: an object
    can only be a click object once click has been imported."""
    module = sys.modules.get("click")
    return module is not None and isinstance(value, getattr(module, kind))


@dataclass(frozen=True)
class BrokerEntry:
    """A registered broker."""

    name: str
    factory: Callable[..., Broker]
    schemes: tuple[str, ...]
    cli_options: tuple[click.Parameter, ...]
    plugin: str
    distribution: str | None


@dataclass(frozen=True)
class RunnerEntry:
    """A registered runner: a class or a ``"module:Class"`` path."""

    name: str
    runner: type | str
    plugin: str


@dataclass(frozen=True)
class ExecutorEntry:
    """A registered executor (the process model of a worker)."""

    name: str
    factory: Callable[..., Any]
    plugin: str


@dataclass(frozen=True)
class WorkerEntry:
    """How ``tq.run_worker(...)`` and ``tq.run_worker_with_args(argv)`` run a
    worker (taskq's own worker, registered by the core plugin)."""

    #: ``run(tq, **options)``: the options of :meth:`taskq_core.TaskQ.run_worker`.
    run: Callable[..., None]
    #: ``run_with_args(tq, argv)``: ``taskq worker``'s command-line options.
    run_with_args: Callable[[Any, list[str]], None]
    plugin: str


@dataclass(frozen=True)
class CommandEntry:
    """A CLI command added to ``taskq`` by a plugin."""

    command: click.Command
    plugin: str


class Registry:
    """What the plugins registered, and which plugin registered what.

    Plugins receive it in ``taskq_register(register)`` and call its methods.
    A name registered twice is a :class:`~taskq_core.exceptions.PluginError`
    that names both plugins.
    """

    def __init__(self) -> None:
        self._current: PluginSource = _UNKNOWN_SOURCE
        self._brokers: dict[str, BrokerEntry] = {}
        self._schemes: dict[str, BrokerEntry] = {}
        self._runners: dict[str, RunnerEntry] = {}
        self._executors: dict[str, ExecutorEntry] = {}
        self._commands: dict[str, CommandEntry] = {}
        self._worker: WorkerEntry | None = None
        self._runner_classes: dict[str, type] = {}

    # -- what plugins call ------------------------------------------------------
    def broker(
        self,
        name: str,
        factory: Callable[..., Broker],
        *,
        schemes: Sequence[str] = (),
        cli_options: Sequence[click.Parameter] = (),
        distribution: str | None = None,
    ) -> None:
        """Register a broker.

        :param name: what users pass to ``--broker``.
        :param factory: builds the broker from keyword options; for a URL
            (``scheme://...``) it is called with ``url=<the URL>``.
        :param schemes: URL schemes this broker handles (``"redis"``).
        :param cli_options: click options ``taskq worker`` adds for it; their
            values are passed to ``factory`` as keyword options.
        :param distribution: the distribution that ships it (defaults to the
            registering plugin's).
        """
        self._check_name("broker", name)
        self._require(callable(factory), f"registered broker {name!r} with a non-callable factory")
        clean_schemes = tuple(self._check_scheme(name, scheme) for scheme in schemes)
        for param in cli_options:
            self._require(
                _is_click(param, "Parameter"),
                f"gave broker {name!r} the CLI option {param!r}, which is not a click.Parameter",
            )
        self._check_free("broker", name, self._brokers.get(name))
        for scheme in clean_schemes:
            other = self._schemes.get(scheme)
            if other is not None:
                self._fail(
                    f"registered broker {name!r} for URL scheme {scheme!r}, which broker "
                    f'{other.name!r} of plugin "{other.plugin}" already handles'
                )
        entry = BrokerEntry(
            name=name,
            factory=factory,
            schemes=clean_schemes,
            cli_options=tuple(cli_options),
            plugin=self._current.name,
            distribution=distribution or self._current.distribution,
        )
        self._brokers[name] = entry
        for scheme in clean_schemes:
            self._schemes[scheme] = entry

    def runner(self, name: str, runner: type | str) -> None:
        """Register a runner class (or its ``"module:Class"`` path) under ``name``."""
        self._check_name("runner", name)
        self._require(
            isinstance(runner, type | str),
            f"registered runner {name!r} as {runner!r}, not a class or a dotted path",
        )
        self._check_free("runner", name, self._runners.get(name))
        self._runners[name] = RunnerEntry(name, runner, self._current.name)

    def executor(self, name: str, factory: Callable[..., Any]) -> None:
        """Register an executor (how a worker runs tasks: ``fork``, ``sync``...)."""
        self._check_name("executor", name)
        self._require(
            callable(factory), f"registered executor {name!r} with a non-callable factory"
        )
        self._check_free("executor", name, self._executors.get(name))
        self._executors[name] = ExecutorEntry(name, factory, self._current.name)

    def command(self, command: click.Command) -> None:
        """Add a click command (or group) to the ``taskq`` CLI."""
        self._require(
            _is_click(command, "Command") and bool(command.name),
            f"registered {command!r} as a command; give a named click.Command",
        )
        name = str(command.name)
        self._check_free("command", name, self._commands.get(name))
        self._commands[name] = CommandEntry(command, self._current.name)

    def worker(
        self, run: Callable[..., None], run_with_args: Callable[[Any, list[str]], None]
    ) -> None:
        """Register how a worker runs in this process: ``run(tq, **options)``
        for ``tq.run_worker(...)`` and ``run_with_args(tq, argv)`` for
        ``tq.run_worker_with_args(argv)``. The core plugin registers taskq's
        own; only one plugin may."""
        self._require(
            callable(run) and callable(run_with_args),
            "registered a worker with a non-callable run function",
        )
        if self._worker is not None:
            raise PluginError(
                f'The worker is registered by two plugins: "{self._worker.plugin}" and '
                f"{self._current.describe()}; uninstall one of them"
            )
        self._worker = WorkerEntry(run, run_with_args, self._current.name)

    # -- what taskq reads -------------------------------------------------------
    @property
    def worker_entry(self) -> WorkerEntry:
        """The registered worker (``PluginError`` when no plugin registered one)."""
        if self._worker is None:
            raise PluginError(
                'No plugin registered a worker (taskq-core\'s plugin "core" does); '
                "check TASKQ_PLUGINS and reinstall taskq-core"
            )
        return self._worker

    @property
    def brokers(self) -> Mapping[str, BrokerEntry]:
        """Brokers by name."""
        return self._brokers

    @property
    def schemes(self) -> Mapping[str, BrokerEntry]:
        """Brokers by URL scheme."""
        return self._schemes

    @property
    def runners(self) -> Mapping[str, RunnerEntry]:
        """Runners by name."""
        return self._runners

    @property
    def executors(self) -> Mapping[str, ExecutorEntry]:
        """Executors by name."""
        return self._executors

    @property
    def commands(self) -> Mapping[str, CommandEntry]:
        """Plugin commands by name."""
        return self._commands

    # -- helpers ----------------------------------------------------------------
    def _fail(self, message: str) -> NoReturn:
        raise PluginError(f"Plugin {self._current.describe()} {message}")

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            self._fail(message)

    def _check_name(self, kind: str, name: object) -> None:
        self._require(
            isinstance(name, str) and bool(name.strip()),
            f"registered a {kind} with the invalid name {name!r}",
        )

    def _check_scheme(self, name: str, scheme: object) -> str:
        text = scheme if isinstance(scheme, str) else ""
        self._require(
            bool(text) and ":" not in text and "/" not in text,
            f"gave broker {name!r} the invalid URL scheme {scheme!r} (write 'redis', not "
            "'redis://')",
        )
        return text.lower()

    def _check_free(
        self,
        kind: str,
        name: str,
        other: BrokerEntry | RunnerEntry | ExecutorEntry | CommandEntry | None,
    ) -> None:
        if other is None:
            return
        if other.plugin == self._current.name:
            self._fail(f"registered the {kind} {name!r} twice")
        raise PluginError(
            f'The {kind} {name!r} is registered by two plugins: "{other.plugin}" and '
            f"{self._current.describe()}; uninstall one of them or leave one out of "
            f"{ALLOW_LIST_ENV}"
        )
