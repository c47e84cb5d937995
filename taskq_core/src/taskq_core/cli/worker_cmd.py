"""``taskq worker``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeAlias

import click

from taskq_core.cli.common import AppCommand, app_options, make_app, parse_list
from taskq_core.exceptions import SchemaError
from taskq_core.executors import DEFAULT_EXECUTOR
from taskq_core.logging import setup_structlog
from taskq_core.plugins import get_registry

__all__ = [
    "COMMANDS",
    "ExecutorChoice",
    "run_worker_cli",
    "run_worker_command",
    "worker",
    "worker_options",
]

if TYPE_CHECKING:
    _StrChoice: TypeAlias = click.Choice[str]
else:
    _StrChoice = click.Choice


class ExecutorChoice(_StrChoice):
    """``--executor``: one of the executors the loaded plugins registered
    (core's ``fork``, ``pool`` and ``sync``, and any a plugin adds), read from
    the registry each time it is needed, so the choices are always current."""

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(sorted(get_registry().executors))

    @choices.setter
    def choices(self, value: Any) -> None:
        """Ignored: the registry decides (click's constructor sets it)."""


def worker_options(func: Any) -> Any:
    """Add the worker options (``-q``, ``--burst``, ``--executor``…) to a click
    command; run its worker with :func:`run_worker_command`."""
    options = [
        click.option(
            "-q",
            "--queues",
            metavar="QUEUES",
            help="comma-separated queues to process (and their subqueues)",
        ),
        click.option(
            "-e", "--exclude-queues", metavar="QUEUES", help="comma-separated queues not to process"
        ),
        click.option(
            "-M",
            "--max-workers-per-queue",
            type=click.IntRange(min=1),
            help="at most this many workers on one queue at a time",
        ),
        click.option(
            "--store-tracebacks/--no-store-tracebacks",
            default=None,
            help="keep tracebacks in execution records [config: STORE_TRACEBACKS]",
        ),
        click.option(
            "--executor",
            type=ExecutorChoice(),
            default=None,
            help="fork: a child per task (default); pool: reused children; threads: threads of "
            "this process; asyncio: async def tasks on an event loop; sync: this process; "
            "or an executor a plugin registers (see `taskq plugins`)",
        ),
        click.option(
            "-c",
            "--concurrency",
            type=click.IntRange(min=1),
            default=None,
            help="task groups run at once, with every executor [config: CONCURRENCY; default 1]",
        ),
        click.option(
            "--max-tasks-per-child",
            type=click.IntRange(min=1),
            default=None,
            help="pool: tasks a child runs before a fresh one replaces it "
            "[config: POOL_MAX_TASKS_PER_CHILD]",
        ),
        click.option(
            "--max-memory-per-child",
            type=click.FloatRange(min=0, min_open=True),
            metavar="MB",
            default=None,
            help="pool: replace a child whose RSS is above this after a task "
            "[config: POOL_MAX_MEMORY_PER_CHILD]",
        ),
        click.option(
            "--exit-after",
            type=click.FloatRange(min=0),
            metavar="MINUTES",
            help="exit (status 0) after this many minutes",
        ),
        click.option(
            "--burst", is_flag=True, help="exit once none of the queues has a queued task"
        ),
        click.option(
            "--log-level",
            default="info",
            show_default=True,
            type=click.Choice(["debug", "info", "warning", "error"]),
        ),
        click.option(
            "--log-format",
            default="json",
            show_default=True,
            type=click.Choice(["json", "console"]),
            help="json for production, console for development",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def run_worker_command(app: Any, params: dict[str, Any]) -> None:
    """Set up logging and run ``app``'s worker with the values of :func:`worker_options`."""
    setup_structlog(
        fmt=params["log_format"],
        level=params["log_level"].upper(),
        logger_name=app.config["LOGGER_NAME"],
    )
    app.run_worker(
        queues=parse_list(params["queues"]) or None,
        exclude_queues=parse_list(params["exclude_queues"]) or None,
        max_workers_per_queue=params["max_workers_per_queue"],
        store_tracebacks=params["store_tracebacks"],
        executor=params["executor"] or DEFAULT_EXECUTOR,
        burst=params["burst"],
        exit_after=params["exit_after"],
        concurrency=params["concurrency"],
        max_tasks_per_child=params["max_tasks_per_child"],
        max_memory_per_child=params["max_memory_per_child"],
    )


_WORKER_KEYS = (
    "queues",
    "exclude_queues",
    "max_workers_per_queue",
    "store_tracebacks",
    "executor",
    "exit_after",
    "concurrency",
    "max_tasks_per_child",
    "max_memory_per_child",
    "burst",
    "log_level",
    "log_format",
)


@click.command(cls=AppCommand, context_settings={"help_option_names": ["--help"]})
@app_options
@worker_options
def worker(**params: Any) -> None:
    """Run a worker: process tasks until stopped (SIGTERM/SIGINT stop it cleanly)."""
    worker_params = {k: params.pop(k) for k in _WORKER_KEYS}
    app = make_app(params)
    try:
        run_worker_command(app, worker_params)
    except SchemaError as exc:  # a broker's stored schema it cannot use: say so, exit 1
        raise click.ClickException(str(exc)) from exc


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-m", "--module", "modules", metavar="MODULES")
@worker_options
@click.pass_obj
def _embedded_worker(app: Any, /, modules: str | None, **params: Any) -> None:
    for module in parse_list(modules):
        importlib.import_module(module)
    run_worker_command(app, params)


def run_worker_cli(app: Any, argv: list[str]) -> None:
    """``tq.run_worker_with_args(argv)``: the worker options, with this app."""
    _embedded_worker.main(args=argv, obj=app, standalone_mode=False, prog_name="taskq worker")


#: the commands the core plugin adds to ``taskq``
COMMANDS: list[click.Command] = [worker]
