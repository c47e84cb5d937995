"""StructlogRollbarHandler: reporting taskq's JSON log lines to Rollbar."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import rollbar
import rollbar_app
import structlog
from fake_rollbar import FakeRollbar

from taskq_core import TaskQ
from taskq_core.logging import setup_structlog
from taskq_rollbar import StructlogRollbarHandler


@pytest.fixture
def blocking_rollbar(fake_rollbar: FakeRollbar) -> FakeRollbar:
    """Rollbar initialized by the app, sending synchronously to the local server."""
    rollbar.init(
        "log-token",
        "logs",
        endpoint=fake_rollbar.endpoint,
        handler="blocking",
        allow_logging_basic_config=False,
    )
    return fake_rollbar


def record(msg: Any, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("taskq", level, __file__, 1, msg, None, None)


def task_error_line(queue: str, **extra: Any) -> str:
    return json.dumps(
        {
            "event": "task error",
            "func": "app.tasks:send",
            "exception_name": "smtplib:SMTPError",
            "queue": queue,
            "task_id": "abc",
            "level": "error",
            "timestamp": "2024-01-01T00:00:00Z",
            "traceback": "Traceback (most recent call last):\nsmtplib.SMTPError: 451",
            **extra,
        }
    )


def handler(level: int = logging.ERROR) -> StructlogRollbarHandler:
    result = StructlogRollbarHandler("taskq")
    result.setLevel(level)
    return result


def test_json_line_becomes_a_grouped_message(blocking_rollbar: FakeRollbar) -> None:
    """A JSON "task error" line: title and fingerprint from event, func,
    exception_name and the queue's root; the traceback is the message; the
    line's fields are in the item; the record gets the item's uuid."""
    line = record(task_error_line("email.CUSTOMER1"))
    handler().handle(line)
    (item,) = blocking_rollbar.data
    expected = (
        "taskq: event=task error func=app.tasks:send exception_name=smtplib:SMTPError queue=email"
    )
    assert item["title"] == expected
    assert item["fingerprint"] == expected
    assert item["level"] == "error"
    assert item["body"]["message"]["body"].startswith("Traceback (most recent call last):")
    assert item["task_id"] == "abc"
    assert item["queue"] == "email.CUSTOMER1"
    assert item["log_timestamp"] == "2024-01-01T00:00:00Z"
    assert isinstance(item["timestamp"], int)
    assert line.rollbar_uuid == item["uuid"]  # type: ignore[attr-defined]


def test_subqueues_share_a_fingerprint(blocking_rollbar: FakeRollbar) -> None:
    """Lines from two subqueues of one root group together."""
    h = handler()
    h.handle(record(task_error_line("email.CUSTOMER1")))
    h.handle(record(task_error_line("email.CUSTOMER2")))
    h.handle(record(task_error_line("sms")))
    one, two, other = blocking_rollbar.data
    assert one["fingerprint"] == two["fingerprint"] != other["fingerprint"]


def test_title_uses_only_fields_present(blocking_rollbar: FakeRollbar) -> None:
    """Without a traceback the title is the message; missing fields are left out."""
    handler().handle(record(json.dumps({"event": "broker unavailable", "error": "refused"})))
    (item,) = blocking_rollbar.data
    assert item["title"] == "taskq: event=broker unavailable"
    assert item["body"]["message"]["body"] == "taskq: event=broker unavailable"
    assert item["error"] == "refused"


def test_lines_below_the_level_are_skipped(blocking_rollbar: FakeRollbar) -> None:
    """At level ERROR a warning line (a failure that will be retried) is not sent."""
    h = handler()
    h.handle(record(task_error_line("email"), level=logging.WARNING))
    h.handle(record(task_error_line("email"), level=logging.ERROR))
    assert [item["level"] for item in blocking_rollbar.data] == ["error"]


def test_plain_text_falls_back_to_rollbar_handler(blocking_rollbar: FakeRollbar) -> None:
    """A line that is not a JSON object is reported as RollbarHandler would."""
    h = handler()
    h.handle(record("disk almost full"))
    h.handle(record("[1, 2]"))
    first, second = blocking_rollbar.data
    assert first["body"]["message"]["body"] == "disk almost full"
    assert second["body"]["message"]["body"] == "[1, 2]"
    assert "fingerprint" not in first


@pytest.fixture
def json_logging() -> Iterator[logging.Logger]:
    """taskq's JSON logging set up, then put back."""
    saved = structlog.get_config()
    logger = logging.getLogger("taskq")
    saved_logger = (logger.handlers[:], logger.level, logger.propagate)
    setup_structlog(fmt="json")
    try:
        yield logger
    finally:
        structlog.configure(**saved)
        logger.handlers[:], logger.level, logger.propagate = saved_logger


def test_with_a_real_worker(blocking_rollbar: FakeRollbar, json_logging: logging.Logger) -> None:
    """Added to the "taskq" logger of a worker (the plugin's own reports turned
    off), the handler reports a permanent failure once, grouped by queue root."""
    h = handler()
    json_logging.addHandler(h)
    tq = TaskQ(
        "memory://",
        config={**rollbar_app.FAST_CONFIG, "PLUGIN_CONFIG": {"rollbar": {"enabled": False}}},
    )
    tq.delay(rollbar_app.charge, args=["ann"], queue="billing.eu")
    tq.run_worker(burst=True)
    (item,) = blocking_rollbar.data
    assert item["title"] == (
        "taskq: event=task error func=rollbar_app:charge "
        "exception_name=rollbar_app:PaymentDeclined queue=billing"
    )
    assert "PaymentDeclined: card declined for ann" in item["body"]["message"]["body"]
