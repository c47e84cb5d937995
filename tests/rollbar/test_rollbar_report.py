"""What a report contains and how failures are grouped (no Rollbar involved)."""

from __future__ import annotations

from typing import Any

import pytest
import rollbar_app

from taskq_core import Task, TaskQ
from taskq_rollbar import fingerprint, queue_root, title
from taskq_rollbar.report import build_report, exception_class

EXECUTION: dict[str, Any] = {
    "time_started": 100.0,
    "time_failed": 101.5,
    "exception_name": "rollbar_app:PaymentDeclined",
    "exception": "card declined for ann",
    "success": False,
    "host": "web-1",
    "worker_id": "w-123",
    "traceback": "Traceback (most recent call last):\n  ...\nPaymentDeclined: card declined",
}


@pytest.fixture
def tq() -> TaskQ:
    return TaskQ("memory://")


def test_queue_root_and_exception_class() -> None:
    """Subqueues reduce to their root; "module:Class" to the class."""
    assert queue_root("email.CUSTOMER1") == "email"
    assert queue_root("email") == "email"
    assert exception_class("taskq_core.exceptions:JobTimeoutException") == "JobTimeoutException"
    assert exception_class("Weird") == "Weird"


def test_fingerprint_groups_by_root_function_and_exception() -> None:
    """The fingerprint is 40 hex digits; it changes with the root, the function
    and the exception, and with nothing else."""
    base = fingerprint("email", "app:send", "smtplib:SMTPError")
    assert len(base) == 40
    assert int(base, 16) >= 0
    assert base == fingerprint("email", "app:send", "smtplib:SMTPError")
    others = {
        fingerprint("sms", "app:send", "smtplib:SMTPError"),
        fingerprint("email", "app:other", "smtplib:SMTPError"),
        fingerprint("email", "app:send", "builtins:ValueError"),
    }
    assert base not in others
    assert len(others) == 3


def test_title_names_function_root_and_class() -> None:
    """The title reads like a sentence."""
    assert (
        title("email", "app:send", "smtplib:SMTPError")
        == "taskq: app:send failed in email: SMTPError"
    )


def test_report_contents(tq: TaskQ) -> None:
    """A report carries the traceback as its message and, as extra data, the task
    id, queue and root, function, exception, executions, host and worker id;
    the arguments are absent."""
    task = Task(tq, rollbar_app.charge, args=["ann"], queue="billing.eu")
    report = build_report(
        task, EXECUTION, level="error", executions=3, will_retry=False, include_args=False
    )
    assert report.message == EXECUTION["traceback"]
    assert report.level == "error"
    assert report.title == "taskq: rollbar_app:charge failed in billing: PaymentDeclined"
    assert report.fingerprint == fingerprint(
        "billing", "rollbar_app:charge", "rollbar_app:PaymentDeclined"
    )
    assert report.extra == {
        "task_id": task.id,
        "queue": "billing.eu",
        "queue_root": "billing",
        "func": "rollbar_app:charge",
        "exception_name": "rollbar_app:PaymentDeclined",
        "exception": "card declined for ann",
        "executions": 3,
        "will_retry": False,
        "host": "web-1",
        "worker_id": "w-123",
        "time_started": 100.0,
        "time_failed": 101.5,
    }
    assert report.payload_data == {
        "fingerprint": report.fingerprint,
        "title": report.title,
        "context": "rollbar_app:charge",
    }


def test_report_arguments_only_when_asked(tq: TaskQ) -> None:
    """include_args adds args and kwargs."""
    task = Task(tq, rollbar_app.charge, args=["ann"], kwargs={"card": "4000"})
    report = build_report(
        task, EXECUTION, level="error", executions=1, will_retry=False, include_args=True
    )
    assert report.extra["args"] == ["ann"]
    assert report.extra["kwargs"] == {"card": "4000"}


def test_report_without_traceback_uses_the_exception(tq: TaskQ) -> None:
    """With tracebacks not stored the message is "Class: message"; a record
    without a worker id takes the worker's."""
    task = Task(tq, rollbar_app.charge, args=["ann"])
    execution = {k: v for k, v in EXECUTION.items() if k not in ("traceback", "worker_id")}
    report = build_report(
        task,
        execution,
        level="warning",
        executions=None,
        will_retry=True,
        include_args=False,
        worker_id="w-9",
    )
    assert report.message == "PaymentDeclined: card declined for ann"
    assert report.extra["worker_id"] == "w-9"
    assert report.extra["will_retry"] is True
