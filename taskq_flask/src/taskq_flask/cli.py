"""``flask taskq ...``: the worker and inspection commands for the app's ``TaskQ``.

The group is published under the ``flask.commands`` entry-point group, so
``flask`` finds it and the app is found the usual way (``--app``,
``FLASK_APP``). Its subcommands are taskq's own (same options), minus the
options that choose a broker or app: the app's ``TaskQFlask`` extension
provides the ``TaskQ``. They are built on first use, so other ``flask``
commands do not load taskq's plugins.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo

from taskq_flask.extension import EXTENSION_KEY, TaskQFlask, bind_app

__all__ = ["taskq_group"]

_CTX = {"help_option_names": ["--help"]}


def _worker_command() -> click.Command:
    from taskq_core.cli.common import parse_list
    from taskq_core.cli.worker_cmd import run_worker_command, worker_options

    @click.command("worker", context_settings=_CTX)
    @click.option(
        "-m",
        "--module",
        "modules",
        metavar="MODULES",
        help="comma-separated modules to import first (tasks, periodic tasks)",
    )
    @worker_options
    @click.pass_obj
    def worker(tq: Any, /, modules: str | None, **params: Any) -> None:
        """Run a worker for this app's tasks: each task runs in the app context.

        It processes tasks until stopped (SIGTERM/SIGINT stop it cleanly).
        """
        for module in parse_list(modules):
            try:
                importlib.import_module(module)
            except ImportError as exc:
                message = f"cannot import module {module!r} given with -m: {exc}"
                raise click.ClickException(message) from exc
        run_worker_command(tq, params)

    return worker


def _without_app_options(command: click.Command) -> click.Command:
    """A copy of a ``taskq`` command without the options that pick an app or broker."""
    from taskq_core.cli.common import APP_OPTION_NAMES
    from taskq_core.plugins import broker_cli_options

    dropped = set(APP_OPTION_NAMES) | {p.name for p in broker_cli_options()}
    clone = copy.copy(command)
    clone.params = [p for p in command.params if p.name not in dropped]
    return clone


class TaskqFlaskGroup(click.Group):
    """A group whose commands are built when first listed or looked up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built = False

    def _build(self) -> None:
        if self._built:
            return
        from taskq_core.cli.inspect_cmd import COMMANDS

        self.add_command(_worker_command())
        for command in COMMANDS:
            self.add_command(_without_app_options(command))
        self._built = True

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._build()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._build()
        return super().get_command(ctx, cmd_name)


def _load_app(ctx: click.Context) -> Flask:
    if current_app:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return app
    return ctx.ensure_object(ScriptInfo).load_app()


@click.group("taskq", cls=TaskqFlaskGroup, context_settings=_CTX)
@click.pass_context
def taskq_group(ctx: click.Context) -> None:
    """taskq workers and queue inspection for this app.

    The commands use the TaskQ of the app's TaskQFlask extension (configured
    from TASKQ_URL, TASKQ_CONFIG, TASKQ_BROKER_OPTIONS).
    """
    app = _load_app(ctx)
    ext = app.extensions.get(EXTENSION_KEY)
    if not isinstance(ext, TaskQFlask):
        raise click.ClickException(
            f"the Flask app {app.name!r} has no taskq extension: create it with "
            "TaskQFlask(app), or call ext.init_app(app) in the app factory"
        )
    # Tasks run in the app this command loaded; the worker itself runs outside
    # any application context, so that each task gets a fresh one.
    bind_app(ext.taskq, app)
    ctx.obj = ext.taskq
