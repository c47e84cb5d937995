"""What a payload may make a worker import and run (API decision 18).

A standard-library or builtin callable is refused at enqueue and, found in a
stored task, fails that task without being imported; ``ALLOWED_TASK_MODULES``
narrows this to the application's own modules (and their submodules), judged
by the module that defines the resolved callable.

The stored tasks here are written straight into the memory broker, the way
someone who can write to the broker would; the modules they name are written
into a temporary directory, and the ones outside the allowed modules leave a
marker file when they are imported, so the tests can tell that no import
happened.
"""

from __future__ import annotations

import builtins
import importlib
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tasks_fixture as tf

import taskq_core
import taskq_core.app
from taskq_core import State, Task, TaskQ, fixed
from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.exceptions import ConfigError, TaskRefused
from taskq_core.runners import DefaultRunner
from taskq_core.serialization import encode_payload

REFUSED = "taskq_core.exceptions:TaskRefused"
#: the packages written into the temporary directory (removed from sys.modules after)
PACKAGES = ("allowedapp", "allowedapp_extra", "outsider", "otherlib")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    tf.calls.clear()
    monkeypatch.setattr(taskq_core.app, "PERIODIC_TASKS", {})
    yield
    tf.calls.clear()


class Modules:
    """The application's modules and an outside one, in ``tmp_path``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.imported_marker = root / "outsider-was-imported"
        self.ran_marker = root / "command-ran"

    def ran(self) -> bool:
        return self.ran_marker.exists()

    def outsider_imported(self) -> bool:
        return self.imported_marker.exists() or "outsider" in sys.modules


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Modules]:
    root = tmp_path / "site"
    found = Modules(root)
    files = {
        "allowedapp/__init__.py": "from allowedapp import tasks",
        "allowedapp/tasks.py": """
            import os
            import subprocess
            from os import system
            from pathlib import Path

            from taskq_core import StopRetry
            from taskq_core.runners import DefaultRunner


            def touch(path):
                Path(path).write_text("ran")


            def fail(path):
                with open(path, "a") as fh:
                    fh.write("run\\n")
                raise ValueError("failing on purpose")


            def no_delay(retry_number):
                return 0.0


            def one_retry(retry_number):
                if retry_number > 1:
                    raise StopRetry()
                return 0.0


            def retries(retry_number, most):
                if retry_number > most:
                    raise StopRetry()
                return 0.0


            class AppRunner(DefaultRunner):
                pass
            """,
        "allowedapp/sub/__init__.py": "",
        "allowedapp/sub/jobs.py": """
            from pathlib import Path


            def touch(path):
                Path(path).write_text("ran")
            """,
        "allowedapp_extra.py": """
            def touch(path):
                raise AssertionError("allowedapp_extra is not a submodule of allowedapp")
            """,
        "otherlib.py": """
            def touch(path):
                raise AssertionError("otherlib is not allowed")


            def no_delay(retry_number):
                return 0.0
            """,
        "outsider/__init__.py": f"""
            from pathlib import Path

            from taskq_core.runners import DefaultRunner

            Path({str(found.imported_marker)!r}).write_text("imported")


            def touch(path):
                Path(path).write_text("ran")


            def policy(retry_number):
                return 0.0


            class Runner(DefaultRunner):
                pass


            class Error(Exception):
                pass
            """,
    }
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield found
    for name in list(sys.modules):
        if name.split(".")[0] in PACKAGES:
            del sys.modules[name]


def narrowed(**config: Any) -> TaskQ:
    return TaskQ(broker=MemoryBroker(), config={"ALLOWED_TASK_MODULES": ["allowedapp"], **config})


def store(tq: TaskQ, task_id: str, queue: str = "default", **data: Any) -> None:
    """Write a task straight into the broker, as someone with write access would."""
    payload = encode_payload({"id": task_id, **data})
    tq.broker.enqueue(EnqueueRequest(id=task_id, queue=queue, payload=payload))


def last_record(tq: TaskQ, task_id: str, queue: str = "default") -> dict[str, Any]:
    task = Task.from_id(tq, queue, State.ERROR, task_id, load_executions=10)
    assert task.executions, f"{task_id} has no execution record"
    return dict(task.executions[-1])


def assert_refused(tq: TaskQ, task_id: str, *words: str) -> dict[str, Any]:
    record = last_record(tq, task_id)
    assert record["exception_name"] == REFUSED, record
    text = record["exception"]
    assert "refused" in text
    for word in words:
        assert word in text, text
    return record


# -- at enqueue ----------------------------------------------------------------------

STDLIB_CALLABLES: list[Callable[..., Any]] = [
    os.system,
    subprocess.run,
    builtins.eval,
    builtins.exec,
    print,
    importlib.import_module,
    pickle.loads,
    shutil.rmtree,
    time.sleep,
]


@pytest.mark.parametrize("func", STDLIB_CALLABLES, ids=lambda f: f.__name__)
def test_delay_refuses_standard_library_and_builtin_callables(func: Callable[..., Any]) -> None:
    """``tq.delay(os.system, ...)`` and friends raise ``TaskRefused`` (a
    ``ValueError``) saying why and what to do; nothing is enqueued."""
    tq = TaskQ(broker=MemoryBroker())
    with pytest.raises(TaskRefused) as info:
        tq.delay(func, args=["touch pwned"])
    message = str(info.value)
    assert f"{func.__module__}:{func.__qualname__}" in message
    assert "standard library" in message
    assert "your own module" in message
    with pytest.raises(TaskRefused):
        Task(tq, func)
    assert tq.get_queue_stats() == {}


def test_task_refused_is_public_and_a_value_error() -> None:
    """The exception is importable from ``taskq_core`` and is a ``ValueError``."""
    assert taskq_core.TaskRefused is TaskRefused
    assert "TaskRefused" in taskq_core.__all__
    assert issubclass(TaskRefused, ValueError)


def test_eager_delay_refuses_and_runs_nothing(tmp_path: Path) -> None:
    """With ``ALWAYS_EAGER`` the refusal happens before anything runs."""
    marker = tmp_path / "pwned"
    tq = TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})
    with pytest.raises(TaskRefused):
        tq.delay(os.system, args=[f"touch {marker}"])
    assert not marker.exists()


def test_standard_library_retry_method_and_runner_are_refused_at_enqueue() -> None:
    """A retry policy or runner class from the standard library is refused too:
    the worker would import and call it."""
    tq = TaskQ(broker=MemoryBroker())
    with pytest.raises(TaskRefused, match="standard library"):
        tq.delay(tf.record, retry_method=time.sleep)
    with pytest.raises(TaskRefused, match="standard library"):
        tq.delay(tf.record, retry_method=(os.system, ["touch pwned"]))
    with pytest.raises(TaskRefused, match="standard library"):
        tq.delay(tf.record, runner_class=subprocess.Popen)
    with pytest.raises(TaskRefused, match="standard library"):
        tq.delay(tf.record, runner_class="subprocess:Popen")
    assert tq.get_queue_stats() == {}


def test_delay_many_and_a_rewritten_clone_are_refused_before_anything_is_written() -> None:
    """A task whose data names a refused function is refused by ``delay_many``
    and ``Task.delay`` too, before anything is written."""
    tq = TaskQ(broker=MemoryBroker())
    good = Task(tq, tf.record, args=[1])
    bad = good.clone()
    bad.data["func"] = "os:system"
    with pytest.raises(TaskRefused, match="os:system"):
        tq.delay_many([good, bad])
    with pytest.raises(TaskRefused, match="os:system"):
        bad.delay()
    assert tq.get_queue_stats() == {}


# -- stored tasks, default configuration ---------------------------------------------


def test_stored_standard_library_paths_fail_without_being_run(modules: Modules) -> None:
    """Stored tasks naming ``os:system``, ``posix:system``, ``subprocess:run``,
    ``builtins:eval``/``exec`` or ``importlib:import_module`` go to ``error``
    with a record saying they were refused; none of them runs (no marker file,
    the outside module is not imported) and the good task after them runs."""
    tq = TaskQ(broker=MemoryBroker())
    marker = str(modules.ran_marker)
    store(tq, "os", func="os:system", args=[f"touch {marker}"])
    store(tq, "os-dotted", func="os.system", args=[f"touch {marker}"])
    store(tq, "posix", func="posix:system", args=[f"touch {marker}"])
    store(tq, "subprocess", func="subprocess:run", args=[["touch", marker]])
    store(tq, "eval", func="builtins:eval", args=[f"open({marker!r}, 'w')"])
    store(tq, "exec", func="builtins:exec", args=[f"open({marker!r}, 'w')"])
    store(tq, "import", func="importlib:import_module", args=["outsider"])
    store(tq, "pickle", func="_pickle:loads", args=[b"garbage"])
    tq.delay(tf.record, args=["after"])
    tq.run_worker(burst=True)
    assert not modules.ran()
    assert not modules.outsider_imported()
    assert tf.calls == [(("after",), {})]
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}
    assert_refused(tq, "os", "os:system", "standard library")
    assert_refused(tq, "posix", "posix:system")
    for task_id in ("os-dotted", "subprocess", "eval", "exec", "import", "pickle"):
        assert_refused(tq, task_id, "standard library")
    assert len(Task.from_id(tq, "default", State.ERROR, "os", load_executions=10).executions) == 1


def test_a_refused_task_is_not_retried() -> None:
    """Refusal is permanent: a stored task with ``retry=True`` options still goes
    straight to ``error`` with one record."""
    tq = TaskQ(broker=MemoryBroker())
    store(
        tq,
        "os",
        func="os:system",
        args=["true"],
        retry_method=["taskq_core.retry:FixedRetry", [0, 5]],
    )
    tq.run_worker(burst=True)
    assert_refused(tq, "os")
    assert len(Task.from_id(tq, "default", State.ERROR, "os", load_executions=10).executions) == 1


@pytest.mark.parametrize(
    "config", [{}, {"ALLOWED_TASK_MODULES": ["allowedapp"]}], ids=["default", "narrowed"]
)
@pytest.mark.parametrize(
    "path", ["allowedapp.tasks:os.system", "allowedapp.tasks:system", "allowedapp:tasks.os.system"]
)
def test_a_path_through_an_app_module_to_a_standard_library_callable_is_refused(
    modules: Modules, config: dict[str, Any], path: str
) -> None:
    """``myapp.tasks:os.system`` is judged by the module that defines what it
    resolves to (``posix``), not by the module named in the path."""
    tq = TaskQ(broker=MemoryBroker(), config=config)
    store(tq, "through", func=path, args=[f"touch {modules.ran_marker}"])
    store(
        tq,
        "subprocess",
        func="allowedapp.tasks:subprocess.run",
        args=[["touch", str(modules.ran_marker)]],
    )
    tq.run_worker(burst=True)
    assert not modules.ran()
    assert_refused(tq, "through")
    assert_refused(tq, "subprocess")


def test_stored_standard_library_runner_and_retry_method_are_refused(modules: Modules) -> None:
    """A stored runner class or retry method from the standard library fails the
    task before its function runs."""
    tq = TaskQ(broker=MemoryBroker())
    store(
        tq,
        "runner",
        func="allowedapp.tasks:touch",
        args=[str(modules.ran_marker)],
        runner_class="subprocess:Popen",
    )
    store(
        tq,
        "retry",
        func="allowedapp.tasks:touch",
        args=[str(modules.ran_marker)],
        retry_method=["os:system", ["true"]],
    )
    tq.run_worker(burst=True)
    assert not modules.ran()
    assert_refused(tq, "runner", "subprocess:Popen")
    assert_refused(tq, "retry", "os:system")


# -- ALLOWED_TASK_MODULES --------------------------------------------------------------


def test_allowed_modules_admit_their_submodules_and_nothing_else(modules: Modules) -> None:
    """``ALLOWED_TASK_MODULES = ["allowedapp"]`` admits ``allowedapp`` and its
    submodules at any depth; ``allowedapp_extra``, another library and taskq's
    own test tasks are refused at enqueue, with a message naming the setting."""
    import allowedapp.sub.jobs
    import allowedapp.tasks
    import allowedapp_extra
    import otherlib

    tq = narrowed()
    first, second = modules.root / "first", modules.root / "second"
    tq.delay(allowedapp.tasks.touch, args=[str(first)])
    tq.delay(allowedapp.sub.jobs.touch, args=[str(second)])
    for func in (allowedapp_extra.touch, otherlib.touch, tf.record):
        with pytest.raises(TaskRefused) as info:
            tq.delay(func, args=["x"])
        assert "ALLOWED_TASK_MODULES" in str(info.value)
        assert func.__module__ in str(info.value)
    with pytest.raises(TaskRefused, match="standard library"):
        tq.delay(os.system, args=["true"])
    tq.run_worker(burst=True)
    assert first.read_text() == second.read_text() == "ran"
    assert tq.get_queue_stats() == {}


def test_stored_path_outside_the_allowed_modules_is_never_imported(modules: Modules) -> None:
    """A stored task naming a module outside ``ALLOWED_TASK_MODULES`` fails with
    a refused record and that module is never imported (its import would leave
    a marker); so are a runner class and a retry method from there, and the
    task's own function does not run. The worker goes on with the next task."""
    tq = narrowed()
    ran = str(modules.ran_marker)
    store(tq, "func", func="outsider:touch", args=[ran])
    store(tq, "runner", func="allowedapp.tasks:touch", args=[ran], runner_class="outsider:Runner")
    store(
        tq,
        "retry",
        func="allowedapp.tasks:touch",
        args=[ran],
        retry_method=["outsider:policy", []],
    )
    store(tq, "lib", func="otherlib:touch", args=[ran])
    store(tq, "extra", func="allowedapp_extra:touch", args=[ran])
    store(tq, "core", func="tasks_fixture:record", args=["refused"])
    after = modules.root / "after"
    store(tq, "good", func="allowedapp.tasks:touch", args=[str(after)])
    tq.run_worker(burst=True)
    assert not modules.outsider_imported()
    assert "otherlib" not in sys.modules
    assert "allowedapp_extra" not in sys.modules
    assert not modules.ran()
    assert tf.calls == []
    assert after.read_text() == "ran"
    assert_refused(tq, "func", "outsider:touch", "ALLOWED_TASK_MODULES")
    assert_refused(tq, "runner", "outsider:Runner", "ALLOWED_TASK_MODULES")
    assert_refused(tq, "retry", "outsider:policy", "ALLOWED_TASK_MODULES")
    for task_id in ("lib", "extra", "core"):
        assert_refused(tq, task_id, "ALLOWED_TASK_MODULES")
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}


def test_an_expired_refused_task_is_failed_without_importing_its_retry_method(
    modules: Modules,
) -> None:
    """Recovering a lost task runs its retry decision: a retry method outside the
    allowed modules is not imported for it; the task goes to ``error``."""
    clock = [1000.0]
    broker = MemoryBroker(clock=lambda: clock[0])
    tq = TaskQ(
        broker=broker,
        config={"ALLOWED_TASK_MODULES": ["allowedapp"], "REQUEUE_EXPIRED_TASKS_INTERVAL": 0},
    )
    store(
        tq,
        "lost",
        func="allowedapp.tasks:touch",
        args=[str(modules.ran_marker)],
        retry_method=["outsider:policy", []],
    )
    popped = broker.pop("default", 1, "gone-worker", 1.0)
    assert [t.id for t in popped] == ["lost"]
    clock[0] += 3600
    tq.run_worker(burst=True)
    assert not modules.outsider_imported()
    assert not modules.ran()
    assert Task.from_id(tq, "default", State.ERROR, "lost").id == "lost"


def test_built_in_policies_runners_and_exceptions_still_work_when_narrowed(
    modules: Modules,
) -> None:
    """Narrowing leaves taskq's own retry policies and runner, the app's own
    policy and runner, and ``retry_on`` with builtin exception classes working:
    each task runs twice (one retry) and ends in ``error``."""
    from allowedapp import tasks

    tq = narrowed()
    traces = [modules.root / f"trace{i}" for i in range(3)]
    first = tq.delay(
        tasks.fail, args=[str(traces[0])], retry_method=fixed(0, 1), runner_class=DefaultRunner
    )
    second = tq.delay(
        tasks.fail,
        args=[str(traces[1])],
        retry_on=[ValueError],
        retry_method=tasks.one_retry,
        runner_class=tasks.AppRunner,
    )
    third = tq.delay(tasks.fail, args=[str(traces[2])], retry_method=(tasks.retries, [1]))
    tq.run_worker(burst=True)
    for trace in traces:
        assert trace.read_text().splitlines() == ["run", "run"]
    for task in (first, second, third):
        assert last_record(tq, task.id)["exception_name"] == "builtins:ValueError"


def test_retry_on_never_imports_a_module_outside_the_allowed_ones(modules: Modules) -> None:
    """A stored ``retry_on`` naming an exception class in a module outside the
    allowed ones never matches and that module is not imported; the task fails
    as it would without that entry."""
    tq = narrowed()
    trace = modules.root / "trace"
    store(
        tq,
        "fails",
        func="allowedapp.tasks:fail",
        args=[str(trace)],
        retry_on=["outsider:Error", "builtins:KeyError"],
        retry_method=["taskq_core.retry:FixedRetry", [0, 3]],
    )
    tq.run_worker(burst=True)
    assert not modules.outsider_imported()
    assert trace.read_text().splitlines() == ["run"]
    record = last_record(tq, "fails")
    assert record["exception_name"] == "builtins:ValueError"


# -- the setting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("allowedapp", "list"),
        (["os"], "standard library"),
        (["os.path"], "standard library"),
        (["builtins"], "standard library"),
        ([], "empty"),
        (["my app"], "module name"),
        ([""], "module name"),
        (["allowedapp", 3], "module name"),
        ({"allowedapp": 1}, "list"),
    ],
)
def test_allowed_task_modules_is_validated(value: Any, words: str) -> None:
    """A bad ``ALLOWED_TASK_MODULES`` is a ``ConfigError`` naming the key."""
    with pytest.raises(ConfigError, match="ALLOWED_TASK_MODULES") as info:
        TaskQ("memory://", config={"ALLOWED_TASK_MODULES": value})
    assert words in str(info.value)


def test_allowed_task_modules_default_and_normal_form() -> None:
    """The default is ``None`` (every module outside the standard library); a
    list or tuple of module names is kept as a tuple."""
    assert TaskQ("memory://").config["ALLOWED_TASK_MODULES"] is None
    tq = TaskQ("memory://", config={"ALLOWED_TASK_MODULES": ["myapp", "shared.jobs"]})
    assert tq.config["ALLOWED_TASK_MODULES"] == ("myapp", "shared.jobs")
    tq2 = TaskQ("memory://", config={"ALLOWED_TASK_MODULES": None})
    assert tq2.config["ALLOWED_TASK_MODULES"] is None


def test_default_retry_method_outside_the_allowed_modules_is_a_config_error(
    modules: Modules,
) -> None:
    """``DEFAULT_RETRY_METHOD`` is stored with tasks, so it must be allowed too."""
    import otherlib

    with pytest.raises(ConfigError, match="DEFAULT_RETRY_METHOD"):
        narrowed(DEFAULT_RETRY_METHOD=otherlib.no_delay)
    with pytest.raises(ConfigError, match="standard library"):
        TaskQ("memory://", config={"DEFAULT_RETRY_METHOD": time.sleep})
    narrowed(DEFAULT_RETRY_METHOD=fixed(1, 2))
