"""The TaskQFlask extension in one process: configuration from ``app.config``,
tasks run inside the application context (sync worker and eager), failures
through the normal hooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import factory_app
import flask_testext
import pytest
from flask import Flask, current_app, g, has_app_context
from flask_testext import MakeApp, read_trace

from taskq_core import TaskQ
from taskq_core.exceptions import ConfigError
from taskq_core.hookspecs import hookimpl
from taskq_core.plugins import get_plugin_manager, reset_plugin_manager
from taskq_core.states import State
from taskq_core.task import Task
from taskq_flask import TaskQFlask, plugin
from taskq_flask.extension import bound_app

SEEN: list[bool] = []


def check_context() -> None:
    """Record whether an application context is active."""
    SEEN.append(has_app_context())


def run_burst(ext: TaskQFlask) -> None:
    ext.taskq.run_worker(burst=True, executor="sync")


# -- configuration ---------------------------------------------------------------------


def test_init_app_stores_extension_and_configures_taskq(tmp_path: Path) -> None:
    """init_app builds the TaskQ's settings from TASKQ_URL, TASKQ_CONFIG and
    TASKQ_BROKER_OPTIONS and stores the extension in app.extensions["taskq"]."""
    ext = TaskQFlask()
    app = Flask("configured")
    app.config.update(
        TASKQ_URL="memory://",
        TASKQ_CONFIG={"DEFAULT_QUEUE": "web", "STORE_TRACEBACKS": False},
        TASKQ_BROKER_OPTIONS={"clock": lambda: 1234.5},
    )
    ext.init_app(app)
    assert app.extensions["taskq"] is ext
    assert ext.taskq.config["DEFAULT_QUEUE"] == "web"
    assert ext.taskq.config["STORE_TRACEBACKS"] is False
    assert type(ext.taskq.broker).__name__ == "MemoryBroker"
    assert ext.taskq.broker.time() == 1234.5
    assert bound_app(ext.taskq) is app


def test_url_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TASKQ_URL in app.config, the TASKQ_URL environment variable is used."""
    monkeypatch.setenv("TASKQ_URL", "memory://")
    ext = TaskQFlask(Flask("from_env"))
    assert type(ext.taskq.broker).__name__ == "MemoryBroker"


def test_given_taskq_is_used_as_configured() -> None:
    """TaskQFlask(app, taskq=tq) adopts tq; app.config's TASKQ_* keys leave it alone."""
    tq = TaskQ("memory://", config={"DEFAULT_QUEUE": "own"})
    app = Flask("adopting")
    app.config.update(TASKQ_URL="redis://nowhere.invalid:1/0", TASKQ_CONFIG={"DEFAULT_QUEUE": "x"})
    ext = TaskQFlask(app, taskq=tq)
    assert ext.taskq is tq
    assert app.extensions["taskq"] is ext
    assert tq.config["DEFAULT_QUEUE"] == "own"
    assert type(tq.broker).__name__ == "MemoryBroker"


def test_bad_taskq_config_names_the_key() -> None:
    """An unknown key in TASKQ_CONFIG is a ConfigError naming it and TASKQ_CONFIG."""
    app = Flask("bad")
    app.config.update(TASKQ_URL="memory://", TASKQ_CONFIG={"DEFAULT_QUEUEE": "x"})
    with pytest.raises(ConfigError, match=r"TASKQ_CONFIG.*DEFAULT_QUEUEE"):
        TaskQFlask(app)


def test_taskq_config_must_be_a_mapping() -> None:
    """TASKQ_CONFIG that is not a dict is refused with a clear message."""
    app = Flask("bad")
    app.config.update(TASKQ_URL="memory://", TASKQ_CONFIG=[("DEFAULT_QUEUE", "x")])
    with pytest.raises(ConfigError, match="TASKQ_CONFIG must be a dict"):
        TaskQFlask(app)


def test_second_app_with_same_broker_settings_shares_the_broker() -> None:
    """An app factory called again after the TaskQ was used: the same broker
    settings keep the connected broker, the new app's TASKQ_CONFIG applies and
    the new app is the one tasks run in."""
    ext = TaskQFlask()
    first = Flask("first")
    first.config.update(TASKQ_URL="memory://", TASKQ_CONFIG={"DEFAULT_QUEUE": "one"})
    ext.init_app(first)
    broker = ext.taskq.broker
    second = Flask("second")
    second.config.update(TASKQ_URL="memory://", TASKQ_CONFIG={"DEFAULT_QUEUE": "two"})
    ext.init_app(second)
    assert ext.taskq.broker is broker
    assert ext.taskq.config["DEFAULT_QUEUE"] == "two"
    assert bound_app(ext.taskq) is second


def test_other_broker_after_connection_is_an_error() -> None:
    """Another TASKQ_URL once the TaskQ is connected is a ConfigError that says
    what to do, and the TaskQ keeps its broker."""
    ext = TaskQFlask()
    first = Flask("first")
    first.config.update(TASKQ_URL="memory://")
    ext.init_app(first)
    broker = ext.taskq.broker
    other = Flask("other")
    other.config.update(TASKQ_URL="memory://other")
    with pytest.raises(ConfigError, match=r"memory://other.*same broker settings"):
        ext.init_app(other)
    assert ext.taskq.broker is broker


def test_init_before_use_can_change_the_broker() -> None:
    """Before the TaskQ is used, a later init_app may choose another broker."""
    ext = TaskQFlask()
    first = Flask("first")
    first.config.update(TASKQ_URL="redis://nowhere.invalid:1/0")
    ext.init_app(first)
    second = Flask("second")
    second.config.update(TASKQ_URL="memory://")
    ext.init_app(second)
    assert type(ext.taskq.broker).__name__ == "MemoryBroker"


# -- the application context in workers ------------------------------------------------


def test_worker_task_reads_config_and_extension(make_app: MakeApp, tmp_path: Path) -> None:
    """A task run by a (sync) worker reads current_app.config and the Greeter
    extension's per-app state."""
    _, ext = make_app("shop")
    ext.taskq.delay(flask_testext.report, args=["out"], kwargs={"value": "v"})
    run_burst(ext)
    (record,) = read_trace(tmp_path, "out")
    assert record["app"] == "shop"
    assert record["greeting"] == "hello from shop"
    assert record["greeter"] == "shop greeter"
    assert record["value"] == "v"
    assert ext.taskq.get_queue_stats() == {}


def test_each_task_gets_a_fresh_app_context(make_app: MakeApp, tmp_path: Path) -> None:
    """Two tasks in one worker process: each runs in its own application context
    (g is empty, the extension's session is new) and the context is torn down
    after each."""
    _, ext = make_app()
    ext.taskq.delay(flask_testext.report, args=["out"], kwargs={"value": "1"})
    ext.taskq.delay(flask_testext.report, args=["out"], kwargs={"value": "2"})
    run_burst(ext)
    records = read_trace(tmp_path, "out")
    assert [r["value"] for r in records] == ["1", "2"]
    assert [r["seen_before"] for r in records] == [False, False]
    assert records[0]["session"] != records[1]["session"]
    teardowns = read_trace(tmp_path, "teardown")
    assert [t["session"] for t in teardowns] == [r["session"] for r in records]
    assert not has_app_context()


def test_failure_reaches_the_normal_hooks(make_app: MakeApp, tmp_path: Path) -> None:
    """A failing task inside the app context is recorded as usual: the task goes
    to error with an execution record, taskq_task_failed and
    taskq_task_permanently_failed fire once, and the context is still torn down."""
    calls: list[tuple[str, str, Any]] = []

    class Recorder:
        @hookimpl
        def taskq_task_failed(self, task: Task, execution: Any, will_retry: bool) -> None:
            calls.append(("failed", task.id, (execution["exception_name"], will_retry)))

        @hookimpl
        def taskq_task_permanently_failed(self, task: Task, execution: Any) -> None:
            calls.append(("permanently_failed", task.id, execution["exception_name"]))

    _, ext = make_app()
    task = ext.taskq.delay(flask_testext.fail, args=["boom"])
    recorder = Recorder()
    get_plugin_manager().register(recorder)
    try:
        run_burst(ext)
    finally:
        get_plugin_manager().unregister(recorder)
    assert calls == [
        ("failed", task.id, ("builtins:ValueError", False)),
        ("permanently_failed", task.id, "builtins:ValueError"),
    ]
    stored = Task.from_id(ext.taskq, "default", State.ERROR, task.id, load_executions=1)
    assert stored.executions[-1]["exception_name"] == "builtins:ValueError"
    assert "failed on purpose" in stored.executions[-1]["traceback"]
    (opened,) = read_trace(tmp_path, "boom")
    assert [t["session"] for t in read_trace(tmp_path, "teardown")] == [opened["session"]]


def test_unbound_taskq_runs_tasks_without_a_context() -> None:
    """A TaskQ that no Flask app uses runs its tasks as before, with no context."""
    SEEN.clear()
    TaskQFlask(Flask("unrelated"), taskq=TaskQ("memory://"))  # loads the hook
    tq = TaskQ("memory://")
    tq.delay(check_context)
    tq.run_worker(burst=True, executor="sync")
    assert SEEN == [False]


def test_hook_registered_without_plugin_autoload(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With plugin autoloading off, init_app registers the app-context hook itself."""
    monkeypatch.setenv("TASKQ_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugin_manager()
    assert not get_plugin_manager().is_registered(plugin)
    _, ext = make_app()
    assert get_plugin_manager().is_registered(plugin)
    ext.taskq.delay(flask_testext.report, args=["out"])
    run_burst(ext)
    assert read_trace(tmp_path, "out")[0]["greeting"] == "hello from test_app"


# -- the app-factory pattern -----------------------------------------------------------


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[Flask]:
    """The factory app on the memory broker, emptied before and after."""
    app = factory_app.create_app({"TASKQ_URL": "memory://", "TRACE_DIR": str(tmp_path)})
    factory_app.ext.taskq.broker.clear()  # type: ignore[attr-defined]
    yield app
    factory_app.ext.taskq.broker.clear()  # type: ignore[attr-defined]


def test_factory_tasks_declared_before_the_app(factory: Flask, tmp_path: Path) -> None:
    """Tasks declared on ext.taskq at import time, before create_app(), are
    enqueued with the app's TASKQ_CONFIG and run inside the app made by the factory."""
    task = factory_app.report.delay("out", value="f")  # type: ignore[attr-defined]
    assert task.queue == "web"
    run_burst(factory_app.ext)
    (record,) = read_trace(tmp_path, "out")
    assert record["app"] == "factory_app"
    assert record["greeting"] == "hello from the factory"
    assert record["greeter"] == "factory greeter"


# -- eager tasks -----------------------------------------------------------------------


def test_eager_task_outside_a_context_runs_in_one(make_app: MakeApp, tmp_path: Path) -> None:
    """An eager task called with no app context runs inside a context of its
    app, which is torn down afterwards."""
    _, ext = make_app("eager", TASKQ_CONFIG={"ALWAYS_EAGER": True})
    ext.taskq.delay(flask_testext.report, args=["out"])
    (record,) = read_trace(tmp_path, "out")
    assert record["greeting"] == "hello from eager"
    assert [t["session"] for t in read_trace(tmp_path, "teardown")] == [record["session"]]
    assert not has_app_context()
    assert ext.taskq.get_queue_stats() == {}


def test_eager_task_in_a_request_uses_the_request_context(
    make_app: MakeApp, tmp_path: Path
) -> None:
    """An eager task called while handling a request runs in that request's app
    context: no second context is pushed (g and the extension session are shared)."""
    app, ext = make_app("eager", TASKQ_CONFIG={"ALWAYS_EAGER": True})
    with app.test_request_context("/"):
        g.task_marker = True
        session = flask_testext.greeter.session.id
        ext.taskq.delay(flask_testext.report, args=["out"])
        assert read_trace(tmp_path, "teardown") == []
    (record,) = read_trace(tmp_path, "out")
    assert record["seen_before"] is True
    assert record["session"] == session
    assert [t["session"] for t in read_trace(tmp_path, "teardown")] == [session]


def test_eager_task_in_another_apps_context_uses_its_own_app(
    make_app: MakeApp, tmp_path: Path
) -> None:
    """An eager task called inside the context of an app that does not use its
    TaskQ runs in its own app's context."""
    _, ext = make_app("mine", TASKQ_CONFIG={"ALWAYS_EAGER": True})
    other = Flask("other")
    with other.app_context():
        ext.taskq.delay(flask_testext.report, args=["out"])
        assert current_app.name == "other"
    assert read_trace(tmp_path, "out")[0]["app"] == "mine"


def test_eager_failure_propagates_and_tears_down_with_it(make_app: MakeApp, tmp_path: Path) -> None:
    """An eager task's exception reaches the caller through the app context,
    whose teardown receives it."""
    _, ext = make_app(TASKQ_CONFIG={"ALWAYS_EAGER": True})
    with pytest.raises(ValueError, match="failed on purpose"):
        ext.taskq.delay(flask_testext.fail, args=["boom"])
    assert [t["exc"] for t in read_trace(tmp_path, "teardown")] == ["ValueError"]
