"""What the worker and inspection commands share: choosing the app and broker."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from taskq_core._internal import import_attribute
from taskq_core.app import TaskQ
from taskq_core.exceptions import PluginError, UnknownBrokerError
from taskq_core.plugins import (
    DEFAULT_BROKER_URL,
    broker_cli_options,
    get_broker_entry,
    get_registry,
    make_broker,
)

__all__ = ["AppCommand", "app_options", "make_app", "parse_list"]

F = TypeVar("F", bound=Callable[..., Any])

#: names of the options :func:`app_options` adds (broker plugin options come on top)
APP_OPTION_NAMES = ("broker", "url", "app", "modules")


def parse_list(value: str | None) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (empty parts dropped)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class AppCommand(click.Command):
    """A command that takes :func:`app_options` plus every registered broker's
    options, looked up when the command parses or shows help (not when it is
    defined, so defining a command loads no plugin)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        try:
            extra = broker_cli_options()
        except PluginError as exc:
            raise click.ClickException(str(exc)) from exc
        own = len(self.params)
        taken = {id(param) for param in params}
        return [*params[:own], *(p for p in extra if id(p) not in taken), *params[own:]]


def app_options(func: F) -> F:
    """Add ``--broker``, ``--url``, ``--app`` and ``-m``; with a command of
    class :class:`AppCommand`, every broker plugin's options come on top."""
    params: list[click.Parameter] = [
        click.Option(
            ["--broker"],
            metavar="NAME",
            help="broker plugin to use, e.g. sqlite, redis or memory (see `taskq plugins`)",
        ),
        click.Option(
            ["--url"],
            envvar="TASKQ_URL",
            metavar="URL",
            help="broker URL, e.g. sqlite:///queue.db or redis://localhost:6379/0 "
            "[env: TASKQ_URL; default: sqlite://, the default SQLite file]",
        ),
        click.Option(
            ["--app"],
            metavar="MODULE:ATTR",
            help="use the TaskQ object (or factory) at this import path",
        ),
        click.Option(
            ["-m", "--module", "modules"],
            metavar="MODULES",
            help="comma-separated modules to import first (tasks, periodic tasks)",
        ),
    ]
    existing = getattr(func, "__click_params__", [])
    func.__click_params__ = existing + list(reversed(params))  # type: ignore[attr-defined]
    return func


def make_app(options: dict[str, Any], *, setup_structlog: bool = False) -> Any:
    """Build (or import) the ``TaskQ`` the command works on; pops the app options.

    A ``TaskQ`` that a parent command put in the click context (``ctx.obj``,
    as ``flask taskq`` does with its app's) is used as is. With ``--app``,
    broker options given on the command line replace the app's broker
    (Decision 11). An unknown broker name or URL scheme, or a URL or option
    the broker refuses, is a usage error (exit status 1), not a traceback.
    """
    ctx = click.get_current_context(silent=True)
    given = ctx.find_object(TaskQ) if ctx is not None else None
    if given is not None:
        return given
    url = options.get("url")
    try:
        app = _build_app(options, setup_structlog)
        _resolve_broker(lambda: app.broker)  # finds the plugin; connects only on first use
    except UnknownBrokerError as exc:
        if url and "://" not in url:
            raise click.ClickException(
                f"--url {url!r} is not a URL: write it as scheme://..., e.g. "
                f"sqlite:///queue.db or redis://localhost:6379/0 (or give a broker name "
                f"with --broker). {exc}"
            ) from exc
        raise click.ClickException(str(exc)) from exc
    return app


def _resolve_broker(build: Callable[[], Any]) -> Any:
    """``build()``; a URL or option the broker refuses is a usage error."""
    try:
        return build()
    except (ValueError, TypeError) as exc:
        raise click.ClickException(f"cannot set up the broker: {exc}") from exc


def _build_app(options: dict[str, Any], setup_structlog: bool) -> Any:
    if "" not in sys.path:  # modules of the current directory, as `python -m` does
        sys.path.insert(0, "")
    for module in parse_list(options.pop("modules", None)):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            message = f"cannot import module {module!r} given with -m: {exc}"
            raise click.ClickException(message) from exc
    app_path = options.pop("app", None)
    broker_name = options.pop("broker", None)
    url = options.pop("url", None)
    broker_names = ["broker", "url", *options]  # the options of every broker plugin
    broker_opts = {k: v for k, v in options.items() if v is not None}
    if app_path:
        app = _import_app(app_path)
        if _any_from_command_line(broker_names):
            # the command line beats the app's configuration (Decision 11)
            spec, opts = _broker_spec(broker_name, url, broker_opts)
            app._use_broker(_resolve_broker(lambda: make_broker(spec, **opts)))
        return app
    spec, opts = _broker_spec(broker_name, url, broker_opts)
    return TaskQ(broker=spec, setup_structlog=setup_structlog, **opts)


def _import_app(app_path: str) -> Any:
    try:
        app = import_attribute(app_path if ":" in app_path else f"{app_path}:tq")
    except ImportError as exc:
        raise click.ClickException(f"cannot import --app {app_path!r}: {exc}") from exc
    if not isinstance(app, TaskQ) and callable(app):
        app = app()
    if not isinstance(app, TaskQ):
        raise click.ClickException(f"--app {app_path!r} is not a TaskQ object or factory")
    return app


def _broker_spec(
    broker_name: str | None, url: str | None, broker_opts: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """The broker the options name: ``(name or URL, keyword options)``.

    ``None``: no broker named (the app's, else ``TASKQ_URL``, else the default
    broker). A broker's own options typed on the command line without
    ``--broker`` (``-h``, ``-p``…) name the broker that declares them; from
    the environment only (``TASKQ_REDIS_PASSWORD``) they name no broker and
    are passed only to a broker that takes them.
    """
    if url and _from_environment("url") and _any_from_command_line(["broker", *broker_opts]):
        # `--broker redis -h host` on the command line beats TASKQ_URL in the environment
        url = None
    if broker_name and url:
        spec: str | None = url
    else:
        spec = url or broker_name
    if spec is None:
        spec = _owner_of_options([k for k in broker_opts if _any_from_command_line([k])])
    if broker_opts:
        entry = get_broker_entry(spec or DEFAULT_BROKER_URL)
        allowed = {p.name for p in entry.cli_options if p.name}
        broker_opts = {k: v for k, v in broker_opts.items() if k in allowed}
    return spec, broker_opts


def _owner_of_options(names: list[str]) -> str | None:
    """The name of the first broker that declares one of these options."""
    for entry in get_registry().brokers.values():
        if any(param.name in names for param in entry.cli_options):
            return entry.name
    return None


def _source(name: str) -> click.core.ParameterSource | None:
    ctx = click.get_current_context(silent=True)
    return ctx.get_parameter_source(name) if ctx is not None else None


def _from_environment(name: str) -> bool:
    return _source(name) is click.core.ParameterSource.ENVIRONMENT


def _any_from_command_line(names: list[str]) -> bool:
    return any(_source(name) is click.core.ParameterSource.COMMANDLINE for name in names)
