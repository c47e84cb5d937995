"""The worker on the memory broker (in-process, ``sync`` executor, burst
runs): outcomes and execution records, retries, ``RetryException``,
failures that must not kill the worker, stored-execution limits, context
managers, batches, locks, queue filters, hooks and periodic tasks."""

from __future__ import annotations

import datetime as dt
import importlib
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tasks_fixture as tf

import taskq_core.app
from taskq_core import (
    RetryException,
    State,
    Task,
    TaskNotFound,
    TaskQ,
    fixed,
    hookimpl,
    periodic,
)
from taskq_core.broker import Execution
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.plugins import get_plugin_manager
from taskq_core.queues import queue_matches

#: the in-process executors (the memory broker cannot fork); every test of
#: this module runs with each, a worker given no executor using that one
IN_PROCESS_EXECUTORS = [("sync", 1), ("threads", 1), ("threads", 4), ("asyncio", 4)]


@pytest.fixture(
    autouse=True, params=IN_PROCESS_EXECUTORS, ids=[f"{e}-c{c}" for e, c in IN_PROCESS_EXECUTORS]
)
def executor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the module's workers with each in-process executor and concurrency."""
    name, concurrency = request.param
    original = TaskQ.run_worker

    def run_worker(self: TaskQ, *args: Any, **kwargs: Any) -> None:
        if "executor" not in kwargs and len(args) < 5:
            kwargs["executor"] = name
            kwargs.setdefault("concurrency", concurrency)
        original(self, *args, **kwargs)

    monkeypatch.setattr(TaskQ, "run_worker", run_worker)
    return str(name)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh call records, and no periodic task declared by other modules."""
    tf.calls.clear()
    monkeypatch.setattr(taskq_core.app, "PERIODIC_TASKS", {})
    yield
    tf.calls.clear()


@pytest.fixture
def app() -> TaskQ:
    return TaskQ(broker=MemoryBroker())


def quick_retry_app(**config: Any) -> TaskQ:
    """An app whose default retry policy retries once, at once."""
    return TaskQ(broker=MemoryBroker(), config={"DEFAULT_RETRY_METHOD": fixed(0, 1), **config})


def errored(app: TaskQ, task: Task) -> Task:
    """``task`` loaded from ``error`` with all its stored executions."""
    return Task.from_id(app, task.queue, State.ERROR, task.id, load_executions=100)


def only_execution(app: TaskQ, task: Task) -> Execution:
    loaded = errored(app, task)
    assert len(loaded.executions) == 1
    return loaded.executions[0]


# -- outcomes and records ----------------------------------------------------------


def test_success_removes_the_task(app: TaskQ) -> None:
    """A task that succeeds runs once and is gone from every state."""
    task = app.delay(tf.record, args=[1], kwargs={"k": "v"})
    app.run_worker(burst=True)
    assert tf.calls == [((1,), {"k": "v"})]
    assert app.get_queue_stats() == {}
    for state in State:
        with pytest.raises(TaskNotFound):
            Task.from_id(app, "default", state, task.id)


def test_failure_without_retry_goes_to_error_with_one_record(app: TaskQ) -> None:
    """A failing task with no retry option goes to ``error`` with one execution
    record: ``"module:Class"`` exception name, host, times and traceback."""
    start = time.time()
    task = app.delay(tf.fail_custom)
    app.run_worker(burst=True)
    assert app.get_queue_stats() == {"default": {"error": 1}}
    record = only_execution(app, task)
    assert record["exception_name"] == "tasks_fixture:CustomError"
    assert record["success"] is False
    assert record["host"] == socket.gethostname()
    assert start <= record["time_started"] <= record["time_failed"] <= time.time()
    assert "CustomError: custom failure" in record["traceback"]
    assert "fail_custom" in record["traceback"]
    assert errored(app, task).n_executions() == 1


def test_builtin_exception_name(app: TaskQ) -> None:
    """Built-in exceptions are named ``builtins:Class``."""
    task = app.delay(tf.fail_value_error)
    app.run_worker(burst=True)
    assert only_execution(app, task)["exception_name"] == "builtins:ValueError"


def test_no_traceback_when_tracebacks_are_off() -> None:
    """With ``store_tracebacks=False`` (or ``STORE_TRACEBACKS: False``) the
    record has no traceback."""
    app = TaskQ(broker=MemoryBroker())
    task = app.delay(tf.fail_value_error)
    app.run_worker(burst=True, store_tracebacks=False)
    record = only_execution(app, task)
    assert "traceback" not in record
    assert record["exception_name"] == "builtins:ValueError"
    configured = TaskQ(broker=MemoryBroker(), config={"STORE_TRACEBACKS": False})
    other = configured.delay(tf.fail_value_error)
    configured.run_worker(burst=True)
    assert "traceback" not in only_execution(configured, other)
    overridden = configured.delay(tf.fail_value_error)
    configured.run_worker(burst=True, store_tracebacks=True)
    assert "traceback" in only_execution(configured, overridden)


# -- retries ----------------------------------------------------------------------------


def test_retry_true_uses_the_default_retry_method(app: TaskQ) -> None:
    """``retry=True`` uses ``DEFAULT_RETRY_METHOD``: by default the task is
    scheduled 60 s after its failure."""
    task = app.delay(tf.fail_value_error, retry=True)
    app.run_worker(burst=True)
    assert app.get_queue_sizes("default") == {"queued": 0, "scheduled": 1, "active": 0}
    loaded = Task.from_id(app, "default", State.SCHEDULED, task.id, load_executions=10)
    assert loaded.n_executions() == 1
    assert loaded.ts is not None
    failed_at = loaded.executions[0]["time_failed"]
    due = loaded.ts.replace(tzinfo=dt.UTC).timestamp()
    assert abs(due - (failed_at + 60)) < 1


def test_retry_true_with_a_configured_default() -> None:
    """With ``DEFAULT_RETRY_METHOD = fixed(0, 1)`` the task runs twice, then errors."""
    app = quick_retry_app()
    task = app.delay(tf.fail_value_error, retry=True)
    app.run_worker(burst=True)
    assert len(tf.calls) == 2
    assert errored(app, task).n_executions() == 2


def test_retry_on_matching_exception_retries(app: TaskQ) -> None:
    """``retry_on`` retries when the exception is (a subclass of) a listed class."""
    exact = app.delay(tf.fail_custom, retry_on=[tf.CustomError])
    base = app.delay(tf.fail_value_error, retry_on=[Exception])
    app.run_worker(burst=True)
    assert app.get_queue_sizes("default")["scheduled"] == 2
    for task in (exact, base):
        assert Task.from_id(app, "default", State.SCHEDULED, task.id).n_executions() == 1


def test_retry_on_other_exception_fails(app: TaskQ) -> None:
    """``retry_on`` does not retry an exception it does not list."""
    task = app.delay(tf.fail_key_error, retry_on=[tf.CustomError, ValueError])
    app.run_worker(burst=True)
    assert app.get_queue_sizes("default")["scheduled"] == 0
    assert errored(app, task).n_executions() == 1


def test_retry_method_fixed_runs_three_times(app: TaskQ) -> None:
    """``retry_method=fixed(0, 2)``: one run and two retries, then ``error``
    with three execution records."""
    task = app.delay(tf.fail_value_error, retry_method=fixed(0, 2))
    app.run_worker(burst=True)
    assert len(tf.calls) == 3
    loaded = errored(app, task)
    assert loaded.n_executions() == 3
    assert len(loaded.executions) == 3
    assert app.get_queue_stats() == {"default": {"error": 1}}


def test_burst_reruns_due_retries_without_waiting() -> None:
    """A burst worker reruns a retry that is due at once: it does not wait
    ``SELECT_TIMEOUT`` between runs."""
    app = TaskQ(broker=MemoryBroker(), config={"SELECT_TIMEOUT": 5})
    task = app.delay(tf.fail_value_error, retry_method=fixed(0, 2))
    started = time.monotonic()
    app.run_worker(burst=True)
    assert time.monotonic() - started < 2.5
    assert errored(app, task).n_executions() == 3


def test_retry_method_function_raising_stop_retry(app: TaskQ) -> None:
    """A custom retry function that raises StopRetry sends the task to ``error``;
    it is called with the number of failures so far (1)."""
    task = app.delay(tf.fail_value_error, retry_method=tf.stop_after_first)
    app.run_worker(burst=True)
    assert ("stop_after_first", 1) in tf.calls
    assert errored(app, task).n_executions() == 1


def test_retry_method_function_tuple_form(app: TaskQ) -> None:
    """TaskTiger's ``(function, args)`` form of a retry method works."""
    task = app.delay(tf.fail_value_error, retry_method=(tf.no_delay_twice, ()))
    app.run_worker(burst=True)
    assert errored(app, task).n_executions() == 3


# -- RetryException ---------------------------------------------------------------------


def test_retry_exception_with_a_method(app: TaskQ) -> None:
    """``RetryException(method=fixed(0, 1))`` retries a task that has no retry
    options: two runs, then ``error``; the records say it was a retry request."""
    task = app.delay(tf.retry_with_method)
    app.run_worker(burst=True)
    assert tf.calls == ["retry_with_method"] * 2
    loaded = errored(app, task)
    assert loaded.n_executions() == 2
    last = loaded.executions[-1]
    assert last["exception_name"] == "taskq_core.exceptions:RetryException"
    assert last["retry"] is True


def test_retry_exception_without_method_uses_the_default() -> None:
    """A bare ``RetryException`` uses ``DEFAULT_RETRY_METHOD``."""
    app = quick_retry_app()
    task = app.delay(tf.retry_plain)
    app.run_worker(burst=True)
    assert tf.calls == ["retry_plain"] * 2
    assert errored(app, task).n_executions() == 2


def test_retry_exception_without_method_uses_the_tasks_method(app: TaskQ) -> None:
    """A bare ``RetryException`` uses the task's own retry method first."""
    task = app.delay(tf.retry_plain, retry_method=fixed(0, 2))
    app.run_worker(burst=True)
    assert errored(app, task).n_executions() == 3


def test_retry_exception_log_error_false_drops_the_task(app: TaskQ) -> None:
    """``RetryException(log_error=False)``: once retries run out the task is
    removed (not kept in ``error``), so ``n_executions`` raises TaskNotFound."""
    task = app.delay(tf.retry_quietly)
    app.run_worker(burst=True)
    assert tf.calls == ["retry_quietly"] * 2
    assert app.get_queue_stats() == {}
    with pytest.raises(TaskNotFound):
        task.n_executions()


def test_retry_exception_original_traceback(app: TaskQ) -> None:
    """``RetryException(original_traceback=True)`` stores the traceback of the
    exception being handled (the inner KeyError)."""
    task = app.delay(tf.retry_keeping_traceback)
    app.run_worker(burst=True)
    record = only_execution(app, task)
    assert "KeyError" in record["traceback"]
    assert "inner_key" in record["traceback"]
    assert record["exception_name"] == "taskq_core.exceptions:RetryException"


def test_retry_exception_is_a_base_exception() -> None:
    """RetryException is not an Exception, so ``except Exception`` in a task
    does not swallow it."""
    assert not isinstance(RetryException(), Exception)


# -- failures that must not take the worker down ------------------------------------------


@pytest.mark.parametrize("code", [None, 0, 3, "message"])
def test_system_exit_is_a_failure_and_the_worker_survives(app: TaskQ, code: Any) -> None:
    """Decision 3: ``SystemExit`` (any code) in a task is a failure with an
    execution record; the worker goes on with the next task."""
    task = app.delay(tf.exit_task, args=[code])
    after = app.delay(tf.record, args=["after"])
    app.run_worker(burst=True)
    assert (("after",), {}) in tf.calls
    record = only_execution(app, task)
    assert record["exception_name"] == "builtins:SystemExit"
    assert "SystemExit" in record["traceback"]
    with pytest.raises(TaskNotFound):
        after.n_executions()


def test_unimportable_function_is_a_failure_and_the_worker_survives(
    app: TaskQ, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision 3: a task whose function can no longer be imported goes to
    ``error`` with a TaskImportError record; the worker goes on."""
    source = tmp_path / "vanishing_tasks.py"
    source.write_text("def job():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("vanishing_tasks")
    task = app.delay(module.job)
    app.delay(tf.record, args=["after"])
    monkeypatch.delitem(sys.modules, "vanishing_tasks")
    source.unlink()
    importlib.invalidate_caches()
    app.run_worker(burst=True)
    assert tf.calls == [(("after",), {})]
    record = only_execution(app, task)
    assert record["exception_name"] == "taskq_core.exceptions:TaskImportError"
    assert "vanishing_tasks" in record["traceback"]


def test_hard_timeout_with_the_sync_executor(app: TaskQ) -> None:
    """A task past its hard timeout fails with JobTimeoutException; the sync
    executor then stops the worker (its state is suspect) with SystemExit."""
    task = app.delay(tf.sleep_for, args=[2], hard_timeout=0.2)
    with pytest.raises(SystemExit, match="job timeout"):
        app.run_worker(burst=True, executor="sync")
    record = only_execution(app, task)
    assert record["exception_name"] == "taskq_core.exceptions:JobTimeoutException"


# -- stored executions -------------------------------------------------------------------


def test_max_stored_executions_trims_but_counting_goes_on(app: TaskQ) -> None:
    """``max_stored_executions=2`` keeps the last two records while
    ``n_executions`` counts every failure."""
    task = app.delay(tf.fail_value_error, retry_method=fixed(0, 4), max_stored_executions=2)
    app.run_worker(burst=True)
    loaded = errored(app, task)
    assert loaded.n_executions() == 5
    assert len(loaded.executions) == 2
    assert loaded.data["max_stored_executions"] == 2
    times = [e["time_started"] for e in loaded.executions]
    assert times == sorted(times)


def test_max_stored_executions_zero_keeps_everything(app: TaskQ) -> None:
    """``max_stored_executions=0`` means no limit (it is stored as given)."""
    task = app.delay(tf.fail_value_error, retry_method=fixed(0, 2), max_stored_executions=0)
    app.run_worker(burst=True)
    loaded = errored(app, task)
    assert loaded.data["max_stored_executions"] == 0
    assert len(loaded.executions) == 3


def test_success_after_retries_removes_the_task_and_its_records(app: TaskQ) -> None:
    """A task that fails, is retried and then succeeds is removed with its
    records, unique or not."""
    plain = app.delay(tf.flaky, args=["plain", 2], retry_method=fixed(0, 5))
    unique = app.delay(tf.flaky, args=["unique", 1], retry_method=fixed(0, 5), unique=True)
    app.run_worker(burst=True)
    assert tf.calls.count(("flaky", "plain")) == 3
    assert tf.calls.count(("flaky", "unique")) == 2
    assert app.get_queue_stats() == {}
    for task in (plain, unique):
        with pytest.raises(TaskNotFound):
            task.n_executions()


# -- context managers ---------------------------------------------------------------------


def test_child_context_managers_wrap_every_run() -> None:
    """Each ``CHILD_CONTEXT_MANAGERS`` instance is entered and exited once per
    run, and sees the task's exception in ``__exit__``."""
    manager = tf.CountingContext()
    app = TaskQ(broker=MemoryBroker(), config={"CHILD_CONTEXT_MANAGERS": [manager]})
    app.delay(tf.record)
    app.run_worker(burst=True)
    assert (manager.entered, manager.exited) == (1, 1)
    assert manager.exited_with == [None]
    app.delay(tf.fail_value_error)
    app.run_worker(burst=True)
    assert (manager.entered, manager.exited) == (2, 2)
    assert manager.exited_with == [None, ValueError]


# -- batches --------------------------------------------------------------------------------


def test_batch_queue_calls_the_batch_function_once_with_the_params() -> None:
    """In a ``BATCH_QUEUES`` queue (and its subqueues) a batch function is
    called once per batch with the list of ``{"args", "kwargs"}``."""
    app = TaskQ(broker=MemoryBroker(), config={"BATCH_QUEUES": {"batch": 3}})
    for n in range(4):
        app.delay(tf.batch_task, args=[n], kwargs={"n": n}, queue="batch.sub")
    app.run_worker(burst=True)
    batches = [params for _, params, _ in tf.calls]
    assert [len(b) for b in batches] == [3, 1]
    assert batches[0] == [{"args": [n], "kwargs": {"n": n}} for n in range(3)]
    assert batches[1] == [{"args": [3], "kwargs": {"n": 3}}]
    assert app.get_queue_stats() == {}


def test_batch_failure_fails_every_task_of_the_batch() -> None:
    """An exception in a batch function fails every task of that batch."""
    app = TaskQ(broker=MemoryBroker(), config={"BATCH_QUEUES": {"batch": 5}})
    tasks = [app.delay(tf.batch_fail, args=[n], queue="batch") for n in range(3)]
    app.run_worker(burst=True)
    assert len(tf.calls) == 1
    for task in tasks:
        assert only_execution(app, task)["exception_name"] == "builtins:ValueError"


def test_batch_function_outside_a_batch_queue_gets_one_task(app: TaskQ) -> None:
    """A batch function in an ordinary queue is called with one-element lists."""
    app.delay(tf.batch_task, args=[1])
    app.delay(tf.batch_task, args=[2])
    app.run_worker(burst=True)
    assert sorted(params[0]["args"][0] for _, params, _ in tf.calls) == [1, 2]
    assert all(len(params) == 1 for _, params, _ in tf.calls)


# -- locks -------------------------------------------------------------------------------------


def test_lock_is_held_while_the_task_runs(app: TaskQ) -> None:
    """A ``lock=True`` task runs holding its lock, which is released afterwards
    (one slot: the second run starts once the first released the lock)."""
    first = app.delay(tf.check_lock_held, kwargs={"a": 1}, lock=True)
    app.delay(tf.check_lock_held, kwargs={"a": 1}, lock=True)
    app.run_worker(burst=True, concurrency=1)
    assert tf.calls == [("lock held", 1, True), ("lock held", 1, True)]
    assert app.broker.acquire_lock(first.lock_id, "afterwards", 10)


def test_task_meeting_a_held_lock_waits(app: TaskQ) -> None:
    """A task whose lock is held elsewhere does not run: it is scheduled
    ``LOCK_RETRY`` seconds later without an execution record, and runs once
    the lock is free."""
    task = app.delay(tf.record, args=["locked"], lock=True)
    assert app.broker.acquire_lock(task.lock_id, "elsewhere", 60)
    before = time.time()
    app.run_worker(burst=True)
    assert tf.calls == []
    loaded = Task.from_id(app, "default", State.SCHEDULED, task.id)
    assert loaded.n_executions() == 0
    assert loaded.ts is not None
    due = loaded.ts.replace(tzinfo=dt.UTC).timestamp()
    assert before + 0.5 <= due <= time.time() + 1.5
    assert app.broker.release_lock(task.lock_id, "elsewhere")
    loaded.update_scheduled_time(time.time() - 1)
    app.run_worker(burst=True)
    assert tf.calls == [(("locked",), {})]


def test_lock_key_shares_the_lock_across_other_arguments(app: TaskQ) -> None:
    """With ``lock_key`` tasks that differ in other arguments share one lock."""
    task = app.delay(tf.lock_key_task, kwargs={"a": 1, "b": 2})
    app.broker.acquire_lock(Task(app, tf.lock_key_task, kwargs={"a": 1, "b": 99}).lock_id, "x", 60)
    app.run_worker(burst=True)
    assert tf.calls == []
    assert Task.from_id(app, "default", State.SCHEDULED, task.id).id == task.id


# -- queue filters ------------------------------------------------------------------------------


QUEUE_CASES = [
    pytest.param(["a", "b"], [], {"a", "a.b", "a.b.c", "b"}, {"x", "ab", "x.a"}, id="-q a,b"),
    pytest.param(["a.b"], [], {"a.b", "a.b.c"}, {"a", "a.c", "b"}, id="-q a.b"),
    pytest.param(
        ["a", "a.b.c", "b", "c"],
        ["a.b", "b"],
        {"a", "a.a", "a.b.c", "c", "c.a"},
        {"a.b", "a.b.d", "b", "b.a", "d", "d.a"},
        id="only-and-exclude",
    ),
    pytest.param(
        ["email", "email.incoming.CUSTOMER1"],
        ["email.incoming"],
        {"email", "email.outgoing.X", "email.incoming.CUSTOMER1"},
        {"email.incoming", "email.incoming.CUSTOMER2"},
        id="readme-email",
    ),
    pytest.param([], ["x"], {"a", "a.x", "xa"}, {"x", "x.y"}, id="exclude-only"),
]


@pytest.mark.parametrize(("only", "exclude", "included", "excluded"), QUEUE_CASES)
def test_queue_matches(
    only: list[str], exclude: list[str], included: set[str], excluded: set[str]
) -> None:
    """TaskTiger's include/exclude examples: the most specific part of the name
    decides, exclude beats include at one level, and a prefix that is not a
    whole part never matches."""
    for queue in included:
        assert queue_matches(queue, only, exclude), queue
    for queue in excluded:
        assert not queue_matches(queue, only, exclude), queue


def test_queue_matches_refuses_a_string() -> None:
    """A bare string instead of a list of queue names is a TypeError."""
    with pytest.raises(TypeError):
        queue_matches("a", "a", [])


@pytest.mark.parametrize(("only", "exclude", "included", "excluded"), QUEUE_CASES)
def test_worker_processes_only_matching_queues(
    only: list[str], exclude: list[str], included: set[str], excluded: set[str]
) -> None:
    """A worker given include/exclude lists runs exactly the matching queues'
    tasks; the others stay queued."""
    app = TaskQ(broker=MemoryBroker())
    for queue in sorted(included | excluded):
        app.delay(tf.record, args=[queue], queue=queue)
    app.run_worker(queues=only, exclude_queues=exclude, burst=True)
    ran = {args[0] for args, _ in tf.calls}
    assert ran == included
    for queue in excluded:
        assert app.get_queue_sizes(queue)["queued"] == 1, queue


def test_worker_uses_only_and_exclude_queues_settings() -> None:
    """Without lists, a worker uses ``ONLY_QUEUES`` and ``EXCLUDE_QUEUES``."""
    app = TaskQ(
        broker=MemoryBroker(),
        config={"ONLY_QUEUES": ["email"], "EXCLUDE_QUEUES": ["email.incoming"]},
    )
    for queue in ("email", "email.outgoing", "email.incoming", "other"):
        app.delay(tf.record, args=[queue], queue=queue)
    app.run_worker(burst=True)
    assert {args[0] for args, _ in tf.calls} == {"email", "email.outgoing"}


# -- executors ---------------------------------------------------------------------------------


def test_memory_broker_refuses_fork_with_a_reason(app: TaskQ) -> None:
    """Asking for the fork executor on ``memory://`` is a ValueError saying why
    (tasks live in this process) and what to use instead."""
    url_app = TaskQ("memory://")
    for target in (app, url_app):
        with pytest.raises(ValueError, match="inside") as info:
            target.run_worker(executor="fork", burst=True)
        assert "sync" in str(info.value)


def test_memory_broker_runs_with_the_default_executor() -> None:
    """``run_worker()`` without an executor runs in-process on ``memory://``."""
    app = TaskQ("memory://")
    app.delay(tf.record, args=["default executor"])
    app.run_worker(burst=True)
    app.delay(tf.record, args=["sync"])
    app.run_worker(burst=True, executor="sync")
    assert tf.calls == [(("default executor",), {}), (("sync",), {})]


def test_unknown_executor_is_an_error(app: TaskQ) -> None:
    """An unknown executor name is a ValueError listing the known ones."""
    with pytest.raises(ValueError, match="sync"):
        app.run_worker(executor="nosuch", burst=True)


# -- hooks -------------------------------------------------------------------------------------


class Recorder:
    """A plugin that records the task events it sees."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @hookimpl
    def taskq_task_enqueued(self, tq: TaskQ, task: Task) -> None:
        self.events.append(("enqueued", task.id))

    @hookimpl
    def taskq_task_started(self, tq: TaskQ, task: Task) -> None:
        self.events.append(("started", task.id))

    @hookimpl
    def taskq_task_succeeded(self, tq: TaskQ, task: Task, duration: float) -> None:
        assert duration >= 0
        self.events.append(("succeeded", task.id))

    @hookimpl
    def taskq_task_failed(
        self, tq: TaskQ, task: Task, execution: Execution, will_retry: bool
    ) -> None:
        self.events.append(("failed", task.id, execution["exception_name"], will_retry))

    @hookimpl
    def taskq_task_permanently_failed(self, tq: TaskQ, task: Task, execution: Execution) -> None:
        self.events.append(("permanently failed", task.id, execution["exception_name"]))


class Broken:
    """A plugin whose every task hook raises."""

    @hookimpl
    def taskq_task_enqueued(self) -> None:
        raise RuntimeError("enqueued hook broken")

    @hookimpl
    def taskq_task_started(self) -> None:
        raise RuntimeError("started hook broken")

    @hookimpl
    def taskq_task_succeeded(self) -> None:
        raise RuntimeError("succeeded hook broken")

    @hookimpl
    def taskq_task_failed(self) -> None:
        raise RuntimeError("failed hook broken")

    @hookimpl
    def taskq_task_permanently_failed(self) -> None:
        raise RuntimeError("permanently failed hook broken")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    plugin = Recorder()
    pm = get_plugin_manager()
    pm.register(plugin)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


@pytest.fixture
def broken() -> Iterator[Broken]:
    plugin = Broken()
    pm = get_plugin_manager()
    pm.register(plugin)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


def test_hooks_for_a_success(app: TaskQ, recorder: Recorder) -> None:
    """A successful task fires enqueued, started and succeeded, once each."""
    task = app.delay(tf.record)
    app.run_worker(burst=True)
    assert recorder.events == [
        ("enqueued", task.id),
        ("started", task.id),
        ("succeeded", task.id),
    ]


def test_hooks_for_retries_and_a_permanent_failure(app: TaskQ, recorder: Recorder) -> None:
    """A task retried once then failing fires enqueued once, started and failed
    twice (``will_retry`` True then False) and permanently_failed once."""
    task = app.delay(tf.fail_value_error, retry_method=fixed(0, 1))
    app.run_worker(burst=True)
    name = "builtins:ValueError"
    assert recorder.events == [
        ("enqueued", task.id),
        ("started", task.id),
        ("failed", task.id, name, True),
        ("started", task.id),
        ("failed", task.id, name, False),
        ("permanently failed", task.id, name),
    ]


def test_enqueued_hook_not_fired_for_duplicates_or_eager_runs(recorder: Recorder) -> None:
    """A unique task that is already pending, and an eager run, fire no
    ``taskq_task_enqueued``."""
    app = TaskQ(broker=MemoryBroker())
    first = app.delay(tf.record, unique=True)
    app.delay(tf.record, unique=True)
    eager = TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})
    eager.delay(tf.record)
    assert recorder.events == [("enqueued", first.id)]


def test_raising_hooks_do_not_break_the_worker(
    app: TaskQ, broken: Broken, recorder: Recorder
) -> None:
    """Hook implementations that raise are logged and skipped: the tasks run
    and end in the right state, and the other plugins still get every event."""
    ok = app.delay(tf.record, args=["ok"])
    bad = app.delay(tf.fail_value_error)
    app.run_worker(burst=True)
    assert (("ok",), {}) in tf.calls
    assert app.get_queue_stats() == {"default": {"error": 1}}
    errored(app, bad)
    kinds = sorted(event[0] for event in recorder.events if event[1] == ok.id)
    assert kinds == ["enqueued", "started", "succeeded"]
    assert [e[0] for e in recorder.events if e[1] == bad.id][-1] == "permanently failed"


# -- periodic tasks --------------------------------------------------------------------------------


def test_periodic_task_of_another_app_is_queued_at_worker_start() -> None:
    """Decision 7: a periodic task declared on a different TaskQ object is
    queued (for its next period) when a worker starts."""
    declaring = TaskQ(broker=MemoryBroker())
    declaring.task(schedule=periodic(seconds=1), queue="periodic")(tf.periodic_job)
    try:
        app = TaskQ(broker=MemoryBroker())
        app.run_worker(burst=True)
        assert app.get_queue_sizes("periodic") == {"queued": 0, "scheduled": 1, "active": 0}
        expected = Task(app, tf.periodic_job)
        assert expected.unique
        loaded = Task.from_id(app, "periodic", State.SCHEDULED, expected.id)
        assert loaded.serialized_func == "tasks_fixture:periodic_job"
        assert declaring.get_queue_stats() == {}
        skipped = TaskQ(broker=MemoryBroker())
        skipped.run_worker(queues=["other"], burst=True)
        assert skipped.get_queue_stats() == {}
    finally:
        del tf.periodic_job._taskq_options  # type: ignore[attr-defined]
        del tf.periodic_job.delay  # type: ignore[attr-defined]
