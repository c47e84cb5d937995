"""``flask taskq ...`` in one process (memory broker): the commands are
discovered through Flask's CLI and use the app's TaskQ."""

from __future__ import annotations

import json
from typing import Any

import flask_testext
import pytest
from click.testing import Result
from flask import Flask
from flask.cli import FlaskGroup
from flask_testext import MakeApp

from taskq_core.states import State
from taskq_core.task import Task
from taskq_flask import TaskQFlask
from taskq_flask.cli import taskq_group

COMMAND_NAMES = ["cancel", "delete", "purge-errors", "retry", "stats", "task", "tasks", "worker"]


def flask_cli(app: Flask, *args: str) -> Result:
    """Run ``flask <args>`` for ``app`` as Flask's own command line does."""
    runner = app.test_cli_runner()
    return runner.invoke(FlaskGroup(create_app=lambda: app), list(args))


def invoke(app: Flask, *args: str) -> Result:
    """Run ``flask taskq <args>`` for ``app``."""
    return app.test_cli_runner().invoke(taskq_group, list(args))


def failed_task(ext: TaskQFlask) -> Task:
    """A task in error, after a sync worker ran it."""
    task = ext.taskq.delay(flask_testext.fail, args=["boom"])
    ext.taskq.run_worker(burst=True, executor="sync")
    return task


def test_flask_finds_the_taskq_group(make_app: MakeApp) -> None:
    """`flask taskq` comes from the flask.commands entry point with every command."""
    app, _ = make_app()
    result = flask_cli(app, "taskq", "--help")
    assert result.exit_code == 0, result.output
    for name in COMMAND_NAMES:
        assert f"  {name} " in result.output


def test_worker_has_taskq_worker_options_but_no_broker_options(make_app: MakeApp) -> None:
    """`flask taskq worker` takes taskq worker's options; the app chooses the broker."""
    app, _ = make_app()
    result = flask_cli(app, "taskq", "worker", "--help")
    assert result.exit_code == 0, result.output
    for option in ("--queues", "--exclude-queues", "--max-workers-per-queue", "--executor"):
        assert option in result.output
    for option in ("--burst", "--exit-after", "--store-tracebacks", "--log-format", "--module"):
        assert option in result.output
    assert "--url" not in result.output
    assert "--broker" not in result.output


def test_stats_and_tasks_use_the_apps_taskq(make_app: MakeApp) -> None:
    """stats and tasks report the queues of the app's TaskQ (its memory broker)."""
    app, ext = make_app(TASKQ_CONFIG={"DEFAULT_QUEUE": "web"})
    task = ext.taskq.delay(flask_testext.report, args=["out"])
    result = flask_cli(app, "taskq", "stats", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"web": {"queued": 1}}
    result = invoke(app, "tasks", "web", "queued", "--json")
    assert result.exit_code == 0, result.output
    assert [t["id"] for t in json.loads(result.output)["tasks"]] == [task.id]


def test_task_shows_the_traceback_and_retry_requeues(make_app: MakeApp) -> None:
    """task shows a failed task's traceback; retry moves it back to queued."""
    app, ext = make_app()
    task = failed_task(ext)
    result = invoke(app, "task", "default", "error", task.id)
    assert result.exit_code == 0, result.output
    assert "ValueError: task boom failed on purpose" in result.output
    result = invoke(app, "retry", "default", task.id)
    assert result.exit_code == 0, result.output
    assert ext.taskq.get_queue_stats() == {"default": {"queued": 1}}


@pytest.mark.parametrize("how", ["delete", "purge-errors"])
def test_delete_and_purge_errors(make_app: MakeApp, how: str) -> None:
    """delete and purge-errors remove tasks in error from the app's broker."""
    app, ext = make_app()
    task = failed_task(ext)
    args: list[Any] = ["delete", "default", task.id] if how == "delete" else ["purge-errors"]
    result = invoke(app, *args)
    assert result.exit_code == 0, result.output
    assert ext.taskq.get_queue_stats() == {}


def test_cancel_removes_a_scheduled_task(make_app: MakeApp) -> None:
    """cancel removes a scheduled task of the app's broker."""
    import datetime as dt

    app, ext = make_app()
    task = ext.taskq.delay(flask_testext.report, args=["out"], when=dt.timedelta(hours=1))
    assert task.state == State.SCHEDULED
    result = invoke(app, "cancel", "default", task.id)
    assert result.exit_code == 0, result.output
    assert ext.taskq.get_queue_stats() == {}


def test_app_without_the_extension_is_a_clear_error() -> None:
    """An app with no TaskQFlask gets an error that says how to add it."""
    app = Flask("bare")
    result = invoke(app, "stats")
    assert result.exit_code == 1
    assert "has no taskq extension" in result.output
    assert "init_app" in result.output


def test_the_command_binds_the_app_it_loaded(make_app: MakeApp) -> None:
    """With one TaskQ shared by two apps, the commands run tasks in the app the
    CLI loaded, not in the last one initialized."""
    from taskq_flask.extension import bound_app

    first, ext = make_app("first")
    second = Flask("second")
    second.config.update(TASKQ_URL="memory://")
    ext.init_app(second)
    assert bound_app(ext.taskq) is second
    result = invoke(first, "stats")
    assert result.exit_code == 0, result.output
    assert bound_app(ext.taskq) is first


def test_worker_module_that_cannot_be_imported_is_a_clear_error(make_app: MakeApp) -> None:
    """`flask taskq worker -m missing` fails before running, naming the module."""
    app, _ = make_app()
    result = invoke(app, "worker", "--burst", "-m", "no_such_module_for_taskq")
    assert result.exit_code == 1
    assert "cannot import module 'no_such_module_for_taskq' given with -m" in result.output
