"""structlog integration: ``taskq_processor`` adds the running task to log
events, and ``setup_structlog`` gives JSON (or console) lines on stderr."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import tasks_fixture as tf

from taskq_core import TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.logging import setup_structlog, taskq_processor

pytestmark = pytest.mark.usefixtures("clean_calls")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog and the ``taskq`` stdlib logger back as they were."""
    logger = logging.getLogger("taskq")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    structlog.reset_defaults()
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed as JSON (fails the test on a non-JSON line)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_processor_outside_a_task_changes_nothing() -> None:
    """Outside a task the processor returns the event unchanged."""
    event = {"event": "hello", "x": 1}
    assert taskq_processor(None, "info", dict(event)) == event


def test_processor_inside_an_eager_task() -> None:
    """Inside a non-batch task it adds ``task_id``, ``task_func`` and ``queue``."""
    app = TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})
    task = app.delay(tf.processor_fields, queue="logs")
    assert tf.calls == [
        (
            "fields",
            {"task_id": task.id, "task_func": "tasks_fixture:processor_fields", "queue": "logs"},
        )
    ]


def test_processor_inside_a_worker_task() -> None:
    """Under the worker the same fields are added."""
    app = TaskQ(broker=MemoryBroker())
    task = app.delay(tf.processor_fields)
    app.run_worker(burst=True)
    assert tf.calls == [
        (
            "fields",
            {"task_id": task.id, "task_func": "tasks_fixture:processor_fields", "queue": "default"},
        )
    ]


def test_processor_in_a_batch_task_changes_nothing() -> None:
    """In a batch task (several tasks at once) nothing is added."""
    app = TaskQ(broker=MemoryBroker(), config={"BATCH_QUEUES": {"b": 2}})
    app.delay(tf.batch_processor_fields, args=[1], queue="b")
    app.delay(tf.batch_processor_fields, args=[2], queue="b")
    app.run_worker(burst=True)
    assert tf.calls == [("batch fields", {})]


def test_processor_keeps_fields_already_set() -> None:
    """A field the caller set explicitly is not overwritten."""
    app = TaskQ(broker=MemoryBroker())
    from taskq_core.context import running
    from taskq_core.task import Task

    task = Task(app, tf.record)
    with running(app, [task], False):
        event = taskq_processor(None, "info", {"queue": "mine"})
    assert event["queue"] == "mine"
    assert event["task_id"] == task.id


def test_setup_structlog_json_lines(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """``setup_structlog(fmt="json")`` writes one JSON object per line to
    stderr, with level and timestamp; events logged in a task carry the task."""
    setup_structlog(fmt="json")
    app = TaskQ(broker=MemoryBroker())
    structlog.get_logger("taskq").info("outside", n=1)
    task = app.delay(tf.log_inside)
    app.run_worker(burst=True)
    captured = capsys.readouterr()
    lines = json_lines(captured.err)
    outside = next(line for line in lines if line["event"] == "outside")
    assert outside["n"] == 1
    assert outside["level"] == "info"
    assert "timestamp" in outside
    assert "task_id" not in outside
    inside = next(line for line in lines if line["event"] == "inside the task")
    assert inside["answer"] == 42
    assert inside["task_id"] == task.id
    assert inside["task_func"] == "tasks_fixture:log_inside"
    assert inside["queue"] == "default"
    assert any(line["event"] == "ready" for line in lines)  # the worker's own lines


def test_setup_structlog_level_filters(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Events below the configured level are dropped."""
    setup_structlog(fmt="json", level="WARNING")
    log = structlog.get_logger("taskq")
    log.info("quiet")
    log.warning("loud")
    events = [line["event"] for line in json_lines(capsys.readouterr().err)]
    assert events == ["loud"]


def test_app_setup_structlog_flag(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """``TaskQ(setup_structlog=True)`` configures JSON output; ``tq.log`` uses it."""
    app = TaskQ(broker=MemoryBroker(), setup_structlog=True)
    app.log.info("from the app", k="v")
    lines = json_lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["from the app"]
    assert lines[0]["k"] == "v"


def test_setup_structlog_console_and_bad_format(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """``fmt="console"`` writes human-readable lines; another format is a ValueError."""
    setup_structlog(fmt="console")
    structlog.get_logger("taskq").info("readable", k="v")
    err = capsys.readouterr().err
    assert "readable" in err
    assert "k=v" in err
    with pytest.raises(ValueError, match="'json' or 'console'"):
        setup_structlog(fmt="xml")


def test_json_lines_with_keys_json_cannot_write(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decision 19: a value whose dict keys JSON cannot write (bytes, tuples:
    what a damaged payload's kwargs may hold) still gives one JSON line, the
    keys written as text, instead of an exception in the worker."""
    setup_structlog(fmt="json")
    log = structlog.get_logger("taskq")
    log.warning(
        "odd keys",
        params={"kwargs": {b"raw": 1, (1, 2): [b"v"], "ok": {b"\xff": None}}},
        value=b"bytes",
    )
    lines = json_lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["odd keys"]
    kwargs = lines[0]["params"]["kwargs"]
    assert kwargs["raw"] == 1
    assert kwargs["ok"] == {"\\xff": None}
    assert kwargs["(1, 2)"] == ["b'v'"]
    assert lines[0]["value"] == "b'bytes'"
