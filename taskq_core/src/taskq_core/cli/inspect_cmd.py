"""Inspection and repair commands: stats, tasks, task, retry, delete, cancel, purge-errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable
from typing import Any

import click

from taskq_core.cli.common import AppCommand, app_options, make_app, parse_list
from taskq_core.exceptions import TaskNotFound
from taskq_core.queues import queue_matches
from taskq_core.states import STATES, State
from taskq_core.task import Task

__all__ = ["COMMANDS"]

_STATE = click.Choice([s.value for s in STATES])
_CTX = {"help_option_names": ["--help"]}


def _fmt_time(value: dt.datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "-"


def _task_dict(task: Any, with_executions: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": task.id,
        "queue": task.queue,
        "state": task.state.value if task.state else None,
        "func": task.data.get("func"),
        "args": task.data.get("args", []),
        "kwargs": task.data.get("kwargs", {}),
        "priority": task.data.get("priority", 0),
        "ts": _fmt_time(task.ts),
        "scheduled_at": _fmt_time(task.scheduled_at),
        "time_last_queued": _fmt_time(task.time_last_queued),
    }
    if "payload_error" in task.data:
        data["payload_error"] = task.data["payload_error"]
    elif task.data.get("func") is None:
        data["missing"] = True
    if task.unreadable is not None:
        data["unreadable"] = task.unreadable
    if with_executions:
        data["executions"] = task.executions
    return data


@click.command(cls=AppCommand, context_settings=_CTX)
@app_options
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def stats(as_json: bool, **options: Any) -> None:
    """Number of tasks per queue and state."""
    app = make_app(options)
    table = app.get_queue_stats()
    if as_json:
        click.echo(json.dumps(table, indent=2, sort_keys=True))
        return
    states = [s.value for s in STATES]
    width = max([len("queue"), *(len(q) for q in table)])
    click.echo(f"{'queue':<{width}}  " + "  ".join(f"{s:>9}" for s in states))
    for queue, counts in sorted(table.items()):
        click.echo(f"{queue:<{width}}  " + "  ".join(f"{counts.get(s, 0):>9}" for s in states))
    if not table:
        click.echo("(no tasks)")


@click.command(cls=AppCommand, context_settings=_CTX)
@app_options
@click.argument("queue")
@click.argument("state", type=_STATE)
@click.option(
    "--skip",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="skip this many of the oldest tasks",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def tasks(queue: str, state: str, skip: int, limit: int, as_json: bool, **options: Any) -> None:
    """List the tasks of QUEUE in STATE, oldest first (paged with --skip/--limit)."""
    app = make_app(options)
    total, found = Task.tasks_from_queue(app, queue, state, skip=skip, limit=limit)
    if as_json:
        click.echo(
            json.dumps(
                {"total": total, "skip": skip, "tasks": [_task_dict(t) for t in found]},
                indent=2,
                default=str,
            )
        )
        return
    shown = f"showing {skip + 1}-{skip + len(found)}" if found else "none shown"
    click.echo(f"{total} task(s) in {queue} {state}; {shown}")
    for task in found:
        info = _task_dict(task)
        args = ", ".join(
            [*map(repr, info["args"]), *(f"{k}={v!r}" for k, v in info["kwargs"].items())]
        )
        what = info["func"] or "(data missing)"
        unreadable = f"  (unreadable: {info['unreadable']})" if "unreadable" in info else ""
        click.echo(f"{task.id}  {info['ts']}  {what}({args}){unreadable}")


@click.command(cls=AppCommand, context_settings=_CTX)
@app_options
@click.argument("queue")
@click.argument("state", type=_STATE)
@click.argument("task_id")
@click.option(
    "--executions",
    "n_executions",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="how many of the latest execution records to show",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def task(
    queue: str, state: str, task_id: str, n_executions: int, as_json: bool, **options: Any
) -> None:
    """Show one task with its executions and tracebacks."""
    app = make_app(options)
    try:
        found = Task.from_id(app, queue, state, task_id, load_executions=n_executions)
    except TaskNotFound as exc:
        raise click.ClickException(f"{exc} (check the queue and state with `taskq tasks`)") from exc
    info = _task_dict(found, with_executions=True)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    for key in (
        "id",
        "queue",
        "state",
        "func",
        "args",
        "kwargs",
        "priority",
        "ts",
        "scheduled_at",
        "time_last_queued",
    ):
        click.echo(f"{key:>16}: {info[key]}")
    if "unreadable" in info:
        click.echo(f"{'unreadable':>16}: {info['unreadable']}")
    click.echo(f"{'failed runs':>16}: {found.n_executions()}")
    for i, record in enumerate(info["executions"], 1):
        click.echo(f"--- execution {i}: {record.get('exception_name')} on {record.get('host')}")
        if record.get("policy_error"):
            click.echo(f"policy error: {record['policy_error']}")
        if record.get("unreadable"):
            click.echo(f"(unreadable: {record['unreadable']})")
        if record.get("traceback"):
            click.echo(str(record["traceback"]).rstrip())


def _single(action: str, help_text: str) -> click.Command:
    @click.command(name=action, cls=AppCommand, context_settings=_CTX, help=help_text)
    @app_options
    @click.argument("queue")
    @click.argument("task_ids", nargs=-1, required=True)
    def command(queue: str, task_ids: tuple[str, ...], **options: Any) -> None:
        app = make_app(options)
        state = {"retry": State.ERROR, "delete": State.ERROR, "cancel": State.SCHEDULED}[action]
        failed = 0
        for task_id in task_ids:
            try:
                found = Task.from_id(app, queue, state, task_id)
                getattr(found, action)()
                click.echo(f"{action}: {task_id}")
            except TaskNotFound:
                failed += 1
                click.echo(f"not found in {queue} {state.value}: {task_id}", err=True)
        if failed:
            sys.exit(1)

    return command


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> dt.timedelta:
    """``"30"``, ``"90s"``, ``"15m"``, ``"6h"``, ``"7d"``, ``"2w"``."""
    match = _DURATION.match(value)
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration like 90s, 15m, 6h, 7d or 2w")
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _duration_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dt.timedelta | None:
    return None if value is None else parse_duration(value)


def _progress_shown() -> bool:
    """Progress bars go to stderr, and only when it is a terminal."""
    return sys.stderr.isatty()


@click.command(name="purge-errors", cls=AppCommand, context_settings=_CTX)
@app_options
@click.option(
    "--older-than",
    metavar="DURATION",
    callback=_duration_option,
    help="only tasks that failed more than this long ago (90s, 15m, 6h, 7d, 2w)",
)
@click.option("--limit", type=click.IntRange(min=1), help="delete at most this many")
@click.option("-q", "--queues", metavar="QUEUES", help="only these queues (and subqueues)")
@click.option("-e", "--exclude-queues", metavar="QUEUES", help="not these queues")
def purge_errors(
    older_than: dt.timedelta | None,
    limit: int | None,
    queues: str | None,
    exclude_queues: str | None,
    **options: Any,
) -> None:
    """Delete tasks in the error state."""

    app = make_app(options)
    before_ts = None
    if older_than is not None:
        before_ts = app.broker.time() - older_than.total_seconds()
    only, exclude = parse_list(queues), parse_list(exclude_queues)
    names = sorted(
        q
        for q in app.broker.queues(State.ERROR)
        if queue_matches(
            q, only or app.config["ONLY_QUEUES"], exclude or app.config["EXCLUDE_QUEUES"]
        )
    )
    deleted = 0
    with contextlib.ExitStack() as stack:
        steps: Iterable[str] = names
        if _progress_shown():
            steps = stack.enter_context(
                click.progressbar(names, label="purging", file=sys.stderr, show_pos=True)
            )
        for name in steps:
            remaining = None if limit is None else limit - deleted
            if remaining == 0:
                break
            deleted += app.broker.purge_errors(name, before_ts, remaining)
    click.echo(f"deleted {deleted} task(s)")


COMMANDS: list[click.Command] = [
    stats,
    tasks,
    task,
    _single("retry", "Move tasks from error back to queued (QUEUE ID...)."),
    _single("delete", "Delete tasks in error (QUEUE ID...)."),
    _single("cancel", "Cancel scheduled tasks (QUEUE ID...)."),
    purge_errors,
]
