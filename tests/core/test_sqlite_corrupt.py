"""Decision 19 on SQLite: data damaged in the file never stops a worker and
never leaves a task stuck.

Tasks are stored by the broker, then changed behind its back through a
connection of the test's own (``sqlite_helpers.outside``), as another
program would: payloads of the wrong shape, task fields of the wrong type
(SQLite keeps what it is given), scores that are not numbers, damaged
execution records, missing data. A real worker runs over them; each damaged
task ends in ``error`` with an execution record saying what was unreadable,
or is removed with a warning naming it, and the healthy tasks beside them run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_corrupt_app as app
import structlog
from sqlite_helpers import drop_task_data, outside, rows

from corrupt_data import payload_kinds
from taskq_core import Task, TaskQ
from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.sqlite import SQLiteBroker
from taskq_core.serialization import SCHEMA_VERSION, pack
from taskq_core.states import STATES, State

Q = "default"
SERIALIZATION_ERROR = "taskq_core.exceptions:SerializationError"
#: a payload that would run ``ran_anyway``
RUNNABLE = pack({"v": SCHEMA_VERSION, "func": app.RAN_ANYWAY, "args": ["x"]})


@pytest.fixture
def trace_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def tq(tmp_path: Path, trace_dir: Path) -> Iterator[TaskQ]:
    broker = SQLiteBroker(tmp_path / "queue.db")
    yield TaskQ(broker, config=app.FAST)
    broker.close()


def broker_of(tq: TaskQ) -> SQLiteBroker:
    assert isinstance(tq.broker, SQLiteBroker)
    return tq.broker


def good(tq: TaskQ, tag: str) -> str:
    return str(tq.delay(app.good, args=[tag], queue=Q).id)


def place(tq: TaskQ, task_id: str, payload: bytes = RUNNABLE, **options: Any) -> None:
    broker_of(tq).enqueue(EnqueueRequest(task_id, Q, payload, **options))


def tamper(tq: TaskQ, sql: str, *params: Any) -> None:
    with outside(broker_of(tq)) as db:
        db.execute(sql, params)


def ran(trace_dir: Path, name: str = "good") -> list[str]:
    path = trace_dir / name
    return path.read_text().splitlines() if path.exists() else []


def run_worker(tq: TaskQ) -> list[dict[str, Any]]:
    """A burst worker in this process (sync executor); returns its log events."""
    with structlog.testing.capture_logs() as logs:
        tq.run_worker(burst=True, executor="sync")
    return logs


def warnings_naming(logs: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("log_level") == "warning" and e.get("task_id") == task_id]


def all_listed(tq: TaskQ) -> dict[State, list[Task]]:
    """Every state's tasks (listing must never raise)."""
    return {s: Task.tasks_from_queue(tq, Q, s, load_executions=10)[1] for s in STATES}


def not_done(tq: TaskQ) -> set[str]:
    listed = all_listed(tq)
    return {t.id for s in (State.QUEUED, State.ACTIVE, State.SCHEDULED) for t in listed[s]}


def last_record(tq: TaskQ, task_id: str) -> dict[str, Any]:
    task = Task.from_id(tq, Q, State.ERROR, task_id, load_executions=10)
    assert task.executions, task_id
    return dict(task.executions[-1])


# -- payloads -------------------------------------------------------------------------------
def test_every_damaged_payload_fails_only_its_task(tq: TaskQ, trace_dir: Path) -> None:
    """Every kind of damaged payload (not msgpack, not a task, a field of the
    wrong type or shape), among healthy tasks, in one worker run: none runs,
    each ends in error with a record, the healthy ones all run."""
    kinds = payload_kinds(app.RAN_ANYWAY)
    good(tq, "before")
    for number, payload in enumerate(kinds.values()):
        place(tq, f"bad{number}", payload)
    good(tq, "after")
    run_worker(tq)
    assert sorted(ran(trace_dir)) == ["after", "before"]
    assert ran(trace_dir, "ran_anyway") == []
    assert not_done(tq) == set()
    failed = {t.id for t in all_listed(tq)[State.ERROR]}
    assert failed == {f"bad{n}" for n in range(len(kinds))}
    for number in range(len(kinds)):
        assert last_record(tq, f"bad{number}")["exception_name"], number


def test_a_payload_stored_as_text_is_failed_not_run(tq: TaskQ, trace_dir: Path) -> None:
    """A payload column rewritten as text (not bytes) is handed to the worker
    as bytes, which fails that task; listing shows it."""
    place(tq, "text")
    tamper(tq, "UPDATE taskq_tasks SET payload = 'not a payload' WHERE id = 'text'")
    (listed,) = all_listed(tq)[State.QUEUED]
    assert listed.unreadable
    run_worker(tq)
    assert ran(trace_dir, "ran_anyway") == []
    assert last_record(tq, "text")["exception_name"] == SERIALIZATION_ERROR


# -- the fields beside the payload ----------------------------------------------------------
FIELD_DAMAGE = {
    "priority text": ("priority", "'high'"),
    "priority real": ("priority", "1.5"),
    "scheduled_at text": ("scheduled_at", "'soon'"),
    "time_last_queued blob": ("time_last_queued", "x'00ff'"),
    "executions_count text": ("executions_count", "'many'"),
    "executions_count negative": ("executions_count", "-4"),
}


@pytest.mark.parametrize("kind", sorted(FIELD_DAMAGE))
def test_a_queued_task_with_an_unreadable_field(tq: TaskQ, trace_dir: Path, kind: str) -> None:
    """A queued task whose field holds a value of the wrong type: listing and
    inspection show it as unreadable (no exception); the worker pops around
    it, and it ends in error with a record naming the field (its fields
    readable again), with a warning naming it."""
    column, value = FIELD_DAMAGE[kind]
    good(tq, "before")
    place(tq, "bad")
    good(tq, "after")
    tamper(tq, f"UPDATE taskq_tasks SET {column} = {value} WHERE id = 'bad'")
    listed = {t.id: t for t in all_listed(tq)[State.QUEUED]}
    assert column in (listed["bad"].unreadable or "")
    assert broker_of(tq).executions_count(Q, "bad") >= 0
    logs = run_worker(tq)
    assert sorted(ran(trace_dir)) == ["after", "before"]
    assert ran(trace_dir, "ran_anyway") == []
    assert not_done(tq) == set()
    record = last_record(tq, "bad")
    assert record["exception_name"] == SERIALIZATION_ERROR
    assert column in record["exception"]
    assert record["host"] == "sqlite"
    assert broker_of(tq).get_task(Q, State.ERROR, "bad").meta_error is None
    assert warnings_naming(logs, "bad"), logs


def test_pop_fails_the_unreadable_task_and_pops_the_others(tq: TaskQ) -> None:
    """One pop of three tasks, the middle one unreadable: the other two are
    popped, the bad one is in error with a record, and the broker reports it
    (moved to error) for the worker to log."""
    broker = broker_of(tq)
    for task_id in ("t1", "t2", "t3"):
        place(tq, task_id)
    tamper(tq, "UPDATE taskq_tasks SET priority = 'x' WHERE id = 't2'")
    assert [t.id for t in broker.pop(Q, 10, "w1", 1.0)] == ["t1", "t3"]
    assert broker.queue_sizes(Q)[State.QUEUED] == 0
    stored = broker.get_task(Q, State.ERROR, "t2", load_executions=5)
    assert stored.executions_count == 1
    assert "priority" in stored.executions[-1]["exception"]
    dropped = broker.take_dropped()
    assert [(d.task_id, d.state, d.moved_to_error) for d in dropped] == [("t2", State.QUEUED, True)]
    assert broker.take_dropped() == []


@pytest.mark.parametrize("outcome", ["error", "retry", "requeue"])
def test_ending_a_run_whose_fields_were_damaged_meanwhile(tq: TaskQ, outcome: Any) -> None:
    """An active task whose count was damaged while it ran: ending its run
    stores the worker's record, and as its fields cannot be trusted it goes
    to error whatever the outcome asked, with a second record saying why."""
    broker = broker_of(tq)
    place(tq, "t")
    assert [t.id for t in broker.pop(Q, 1, "w1", 1.0)] == ["t"]
    tamper(tq, "UPDATE taskq_tasks SET executions_count = 'x' WHERE id = 't'")
    assert broker.get_task(Q, State.ACTIVE, "t").meta_error
    record = {"exception_name": "builtins:ValueError", "time_failed": 1.0, "success": False}
    assert broker.finish(Q, "t", "w1", outcome, when=broker.time(), execution=record)  # type: ignore[arg-type]
    stored = broker.get_task(Q, State.ERROR, "t", load_executions=5)
    assert stored.meta_error is None
    assert [r["exception_name"] for r in stored.executions] == [
        "builtins:ValueError",
        SERIALIZATION_ERROR,
    ]
    assert "executions_count" in stored.executions[-1]["exception"]
    assert broker.executions_count(Q, "t") == 2
    assert broker.queue_sizes(Q) == {**dict.fromkeys(STATES, 0), State.ERROR: 1}


def test_a_successful_run_of_a_damaged_task_removes_it(tq: TaskQ) -> None:
    """``done`` needs nothing from the damaged fields: the task is gone."""
    broker = broker_of(tq)
    place(tq, "t")
    broker.pop(Q, 1, "w1", 1.0)
    tamper(tq, "UPDATE taskq_tasks SET priority = 'x' WHERE id = 't'")
    assert broker.finish(Q, "t", "w1", "done")
    assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
    assert rows(broker, "SELECT count(*) FROM taskq_tasks") == [(0,)]


def test_a_due_scheduled_task_with_a_damaged_field_goes_to_error(
    tq: TaskQ, trace_dir: Path
) -> None:
    """A scheduled task whose fields are unreadable is moved to error with a
    record when it is due (not queued with made-up values)."""
    place(tq, "s", when=broker_of(tq).time() + 1000)
    tamper(tq, "UPDATE taskq_tasks SET priority = 'x' WHERE id = 's'")
    broker_of(tq).update_scheduled_time(Q, "s", broker_of(tq).time() - 5)
    logs = run_worker(tq)
    assert ran(trace_dir, "ran_anyway") == []
    assert "priority" in last_record(tq, "s")["exception"]
    assert warnings_naming(logs, "s")


def test_an_expired_active_task_with_bad_data_is_failed_once(tq: TaskQ, trace_dir: Path) -> None:
    """An active task whose worker died, with a damaged field: the recovery
    pass of a (re)started worker fails it with a record; it does not loop."""
    broker = broker_of(tq)
    place(tq, "lost")
    broker.pop(Q, 1, "dead-worker", 1.0)
    tamper(tq, "UPDATE taskq_tasks SET executions_count = 'x' WHERE id = 'lost'")
    tamper(tq, "UPDATE taskq_entries SET score = score - 100 WHERE id = 'lost'")
    good(tq, "after")
    run_worker(tq)
    run_worker(tq)
    assert ran(trace_dir) == ["after"]
    assert not_done(tq) == set()
    names = [r["exception_name"] for r in Task.from_id(tq, Q, State.ERROR, "lost", 10).executions]
    assert SERIALIZATION_ERROR in names


# -- scores -----------------------------------------------------------------------------------
def test_scores_that_are_not_numbers_never_strand_a_task(tq: TaskQ, trace_dir: Path) -> None:
    """A scheduled entry whose due time is text goes to error when the worker
    moves due tasks; an active one whose heartbeat is text counts as expired
    and is recovered (failed, its record naming the score); a queued one is
    popped and runs. Listing shows each
    (score 0, unreadable) instead of raising."""
    broker = broker_of(tq)
    place(tq, "sched", when=broker.time() + 1000)
    active = good(tq, "active")
    assert [t.id for t in broker.pop(Q, 1, "dead-worker", 1.0)] == [active]
    queued = good(tq, "queued")
    sql = "UPDATE taskq_entries SET score = 'later' WHERE id IN ('sched', ?, ?)"
    tamper(tq, sql, active, queued)
    stored = {t.id: t for s in STATES for t in broker.list_tasks(Q, s)[1]}
    listed = {t.id: t for tasks in all_listed(tq).values() for t in tasks}
    for task_id in ("sched", active, queued):
        assert stored[task_id].ts == 0.0
        assert "score" in (listed[task_id].unreadable or ""), task_id
    assert broker.expired_tasks(broker.time() - 10_000, 10) == [(Q, active)]
    run_worker(tq)
    assert ran(trace_dir) == ["queued"]
    assert ran(trace_dir, "ran_anyway") == []
    assert not_done(tq) == set()
    assert "due time" in last_record(tq, "sched")["exception"]
    # recovered as a lost run whose stored data is unreadable: failed, saying why
    record = last_record(tq, active)
    assert record["exception_name"] == SERIALIZATION_ERROR
    assert "score in active is not a number" in record["exception"]


def test_a_unique_reenqueue_repairs_an_unreadable_due_time(tq: TaskQ) -> None:
    """Enqueueing a unique task again while its pending copy's due time is
    unreadable gives it the new request's time."""
    broker = broker_of(tq)
    place(tq, "u", unique=True, when=broker.time() + 1000)
    tamper(tq, "UPDATE taskq_entries SET score = 'x' WHERE id = 'u'")
    when = broker.time() + 500
    result = broker.enqueue(EnqueueRequest("u", Q, b"again", when=when, unique=True))
    assert not result.created
    assert result.ts == when
    assert broker.get_task(Q, State.SCHEDULED, "u").ts == when


# -- records and missing data -------------------------------------------------------------------
def test_damaged_execution_records_are_shown_not_raised(tq: TaskQ) -> None:
    """A stored record that is not msgpack, or not a map, is listed as
    ``{"unreadable": ...}``; the task's other records are intact."""
    broker = broker_of(tq)
    place(tq, "t")
    for number in range(3):
        broker.pop(Q, 1, "w1", 1.0)
        record = {"exception_name": f"builtins:E{number}", "success": False}
        broker.finish(Q, "t", "w1", "requeue", execution=record)  # type: ignore[arg-type]
    tamper(tq, "UPDATE taskq_executions SET record = x'c1ff' WHERE n = 1")
    tamper(tq, "UPDATE taskq_executions SET record = x'93010203' WHERE n = 2")
    stored = broker.get_task(Q, State.QUEUED, "t", load_executions=10)
    assert "not valid msgpack" in stored.executions[0]["unreadable"]
    assert "not a map" in stored.executions[1]["unreadable"]
    assert stored.executions[2]["exception_name"] == "builtins:E2"
    assert Task.from_id(tq, Q, State.QUEUED, "t", load_executions=10).executions[0]


def test_ids_whose_data_is_missing_are_dropped_with_a_warning(tq: TaskQ, trace_dir: Path) -> None:
    """A queued id whose task row is gone is dropped with a warning naming
    queue and id; the healthy tasks run once and nothing is left."""
    good(tq, "kept")
    place(tq, "gone")
    drop_task_data(broker_of(tq), Q, "gone")
    logs = run_worker(tq)
    assert ran(trace_dir) == ["kept"]
    assert broker_of(tq).queue_sizes(Q) == dict.fromkeys(STATES, 0)
    found = warnings_naming(logs, "gone")
    assert found
    assert all(e["queue"] == Q for e in found)
