"""taskq's pytest plugin (``taskq_app``, ``taskq_run``) as a user's test
suite sees it, and :func:`taskq_core.testing.run_tasks`."""

from __future__ import annotations

import datetime as dt

import pytest
import tasks_fixture as tf

from taskq_core import TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.testing import run_tasks

pytest_plugins = ["pytester"]

USER_TASKS = """
    sent = []


    def send_email(to, subject="hello"):
        sent.append((to, subject))


    def explode():
        raise RuntimeError("kaboom in a user task")
"""


pytestmark = pytest.mark.usefixtures("clean_calls")


def test_user_suite_with_the_fixtures_passes(pytester: pytest.Pytester) -> None:
    """A user's test that enqueues with ``taskq_app`` and runs the tasks with
    ``taskq_run`` passes; each test gets a fresh, empty app; with
    ``raise_on_errors=False`` failures are left for the test to inspect."""
    pytester.makepyfile(usertasks=USER_TASKS)
    pytester.makepyfile(
        test_user="""
        import usertasks
        from taskq_core import TaskQ


        def test_welcome_email(taskq_app, taskq_run):
            assert isinstance(taskq_app, TaskQ)
            taskq_app.delay(usertasks.send_email, args=["ann@example.com"])
            taskq_app.delay(usertasks.send_email, args=["bob@x.org"], kwargs={"subject": "hi"})
            assert taskq_run(taskq_app) == 2
            assert sorted(usertasks.sent) == [("ann@example.com", "hello"), ("bob@x.org", "hi")]
            assert taskq_app.get_queue_stats() == {}


        def test_fresh_app_each_test(taskq_app):
            assert taskq_app.get_queue_stats() == {}


        def test_failures_left_for_inspection(taskq_app, taskq_run):
            taskq_app.delay(usertasks.explode)
            assert taskq_run(taskq_app, raise_on_errors=False) == 1
            assert taskq_app.get_queue_stats() == {"default": {"error": 1}}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_failing_task_fails_the_user_test_with_its_traceback(pytester: pytest.Pytester) -> None:
    """When a task ends in ``error``, ``taskq_run`` fails the test with an
    assertion that names the task and shows its traceback."""
    pytester.makepyfile(usertasks=USER_TASKS)
    pytester.makepyfile(
        test_user="""
        import usertasks


        def test_it(taskq_app, taskq_run):
            taskq_app.delay(usertasks.explode)
            taskq_run(taskq_app)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 task(s) failed*",
            "*usertasks:explode in default: builtins:RuntimeError*",
            "*Traceback (most recent call last)*",
            "*RuntimeError: kaboom in a user task*",
        ]
    )


# -- run_tasks -----------------------------------------------------------------------------


def test_run_tasks_runs_due_scheduled_tasks_but_not_future_ones() -> None:
    """``run_tasks`` runs queued and due scheduled tasks, leaves future ones,
    and returns how many runs happened."""
    app = TaskQ(broker=MemoryBroker())
    app.delay(tf.record, args=["now"])
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    task = app.delay(tf.record, args=["later"], when=dt.timedelta(hours=1))
    task.update_scheduled_time(past)
    app.delay(tf.record, args=["future"], when=dt.timedelta(hours=1))
    assert run_tasks(app) == 2
    assert sorted(args[0] for args, _ in tf.calls) == ["later", "now"]
    assert app.get_queue_sizes("default")["scheduled"] == 1


def test_run_tasks_reports_only_new_failures() -> None:
    """Tasks already in ``error`` before the run are not reported again."""
    app = TaskQ(broker=MemoryBroker())
    app.delay(tf.fail_value_error)
    with pytest.raises(AssertionError, match="1 task"):
        run_tasks(app)
    app.delay(tf.record)
    assert run_tasks(app) == 1


def test_run_tasks_passes_worker_options() -> None:
    """Worker options (queues…) are passed to the worker."""
    app = TaskQ(broker=MemoryBroker())
    app.delay(tf.record, args=["a"], queue="a")
    app.delay(tf.record, args=["b"], queue="b")
    assert run_tasks(app, queues=["a"]) == 1
    assert tf.calls == [(("a",), {})]
