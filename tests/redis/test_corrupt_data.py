"""Decision 19 on Redis: corrupted stored data never stops a worker and never
leaves a task stuck.

Tasks are stored by the broker and then damaged behind its back with redis-py
(``corrupt_redis.py``): payloads of the wrong shape, meta strings with
unparsable numbers or missing fields, stale and malformed queued entries,
missing payloads. A real worker runs over them (in this process, and in
``test_corrupt_data_at_scale`` as a ``taskq worker`` process); each corrupted
task ends in ``error`` with an execution record saying what was unreadable, or
is removed with a warning naming it, and the healthy tasks beside them run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corrupt_app  # noqa: E402
from corrupt_redis import CORRUPTIONS, Placed, place_task  # noqa: E402

from corrupt_data import payload_kinds  # noqa: E402
from taskq_core import Task, TaskQ  # noqa: E402
from taskq_core.broker import EnqueueRequest  # noqa: E402
from taskq_core.cli import main  # noqa: E402
from taskq_core.serialization import SCHEMA_VERSION, pack  # noqa: E402
from taskq_core.states import State  # noqa: E402
from taskq_redis import RedisBroker  # noqa: E402
from worker_procs import WorkerPool, lines, running, wait_for  # noqa: E402

Q = "default"
SERIALIZATION_ERROR = "taskq_core.exceptions:SerializationError"


@pytest.fixture
def trace_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def tq(redis_url: str, redis_client: Any, trace_dir: Path) -> Iterator[TaskQ]:
    app = TaskQ(redis_url, config=corrupt_app.FAST)
    try:
        yield app
    finally:
        app.broker.close()


def broker_of(tq: TaskQ) -> RedisBroker:
    broker = tq.broker
    assert isinstance(broker, RedisBroker)
    return broker


def good(tq: TaskQ, tag: str, queue: str = Q) -> str:
    """Enqueue a healthy task; returns its id."""
    return str(tq.delay(corrupt_app.good, args=[tag], queue=queue).id)


def ran(trace_dir: Path, name: str = "good") -> list[str]:
    return lines(trace_dir / name)


def run_worker(tq: TaskQ) -> list[dict[str, Any]]:
    """A burst worker in this process (sync executor); returns its log events."""
    with structlog.testing.capture_logs() as logs:
        tq.run_worker(burst=True, executor="sync")
    return logs


def warnings_naming(logs: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("log_level") == "warning" and e.get("task_id") == task_id]


def error_task(tq: TaskQ, task_id: str, queue: str = Q) -> Task:
    return Task.from_id(tq, queue, State.ERROR, task_id, load_executions=10)


def all_listed(tq: TaskQ, queue: str = Q) -> dict[str, list[Task]]:
    """Every state's tasks (listing must never raise)."""
    return {
        state.value: Task.tasks_from_queue(tq, queue, state, load_executions=10)[1]
        for state in State
    }


def pending_ids(tq: TaskQ, queue: str = Q) -> set[str]:
    listed = all_listed(tq, queue)
    return {t.id for state in ("queued", "active") for t in listed[state]}


def tasks_hash_ids(tq: TaskQ, queue: str = Q) -> set[str]:
    """The task ids that still have any field in the queue's tasks hash."""
    broker = broker_of(tq)
    fields = broker.client.hkeys(broker.layout.queue(queue).tasks)
    return {f.decode().split(":")[1] for f in fields}


# -- payloads that are valid msgpack with a wrong field -----------------------------

WRONG_FIELD_KINDS = [
    name
    for name in payload_kinds(corrupt_app.RAN_ANYWAY)
    if name.split()[0]
    in {"func", "args", "kwargs", "hard_timeout", "lock_key", "max_stored_executions", "retry_on"}
]


@pytest.mark.parametrize("kind", WRONG_FIELD_KINDS)
def test_wrong_field_in_payload_fails_that_task_only(tq: TaskQ, trace_dir: Path, kind: str) -> None:
    """A payload that is valid msgpack but has a wrong type or shape in func,
    args, kwargs, hard_timeout, lock_key, max_stored_executions or retry_on:
    the worker does not die, the task goes to error with a SerializationError
    record naming the field (never run), and the tasks around it run."""
    good(tq, "before")
    place_task(broker_of(tq), Q, "bad", "queued", CORRUPTIONS[f"payload: {kind}"])
    good(tq, "after")
    run_worker(tq)
    assert sorted(ran(trace_dir)) == ["after", "before"]
    assert ran(trace_dir, "ran_anyway") == []
    assert pending_ids(tq) == set()
    record = error_task(tq, "bad").executions[-1]
    assert record["exception_name"] == SERIALIZATION_ERROR
    assert f"'{kind.split(maxsplit=1)[0]}'" in record["exception"]


# -- meta ---------------------------------------------------------------------------

META_KINDS = sorted(name for name in CORRUPTIONS if name.startswith("meta "))


@pytest.mark.parametrize("kind", META_KINDS)
def test_unreadable_meta_of_a_queued_task(tq: TaskQ, trace_dir: Path, kind: str) -> None:
    """A queued task whose meta string has an unparsable number, a missing
    field or does not match its queued entry: listing shows it (no exception);
    the worker pops around it without losing anything, and the task ends in
    error with a record saying what was unreadable, with a warning naming it."""
    good(tq, "before")
    place_task(broker_of(tq), Q, "bad", "queued", CORRUPTIONS[kind])
    good(tq, "after")
    listed = all_listed(tq)
    assert "bad" in {t.id for t in listed["queued"]}
    logs = run_worker(tq)
    assert sorted(ran(trace_dir)) == ["after", "before"]
    assert ran(trace_dir, "ran_anyway") == []
    assert pending_ids(tq) == set()
    task = error_task(tq, "bad")
    assert task.executions, kind
    record = task.executions[-1]
    assert record["exception_name"] == SERIALIZATION_ERROR
    assert "meta" in record["exception"]
    assert warnings_naming(logs, "bad"), logs


@pytest.mark.parametrize("field", ["queued_at", "seq"])
def test_pop_checks_queued_time_and_sequence_before_changing_anything(
    tq: TaskQ, field: str
) -> None:
    """One pop of three tasks, the middle one with an unparsable queued time or
    sequence: the other two are popped, and the bad one is not lost (it is in
    error with a record); the broker reports it for the worker to log."""
    broker = broker_of(tq)
    for task_id in ("t1", "t2", "t3"):
        broker.enqueue(EnqueueRequest(task_id, Q, pack({"v": SCHEMA_VERSION, "func": "m:f"})))
    CORRUPTIONS[f"meta {field}: text"].apply(broker, Q, "t2")
    popped = broker.pop(Q, 10, "w1", 1.0)
    assert [t.id for t in popped] == ["t1", "t3"]
    assert broker.queue_sizes(Q)[State.QUEUED] == 0
    stored = broker.get_task(Q, State.ERROR, "t2", load_executions=5)
    assert stored.executions_count == 1
    assert field in stored.executions[-1]["exception"]
    dropped = broker.take_dropped()
    assert [(d.task_id, d.state, d.moved_to_error) for d in dropped] == [("t2", State.QUEUED, True)]


@pytest.mark.parametrize("outcome", ["error", "retry", "requeue"])
def test_execution_record_is_stored_when_the_meta_is_unreadable(tq: TaskQ, outcome: Any) -> None:
    """An active task whose meta was damaged meanwhile: ending its run stores
    the worker's record (it was silently dropped), and as its meta cannot be
    trusted it goes to error whatever the outcome asked, with a second record
    saying why; listing and counting it never raise."""
    broker = broker_of(tq)
    broker.enqueue(EnqueueRequest("t", Q, pack({"v": SCHEMA_VERSION, "func": "m:f"})))
    assert [t.id for t in broker.pop(Q, 1, "w1", 1.0)] == ["t"]
    CORRUPTIONS["meta count: text"].apply(broker, Q, "t")
    assert broker.get_task(Q, State.ACTIVE, "t").meta_error
    record = {"exception_name": "builtins:ValueError", "time_failed": 1.0, "success": False}
    assert broker.finish(Q, "t", "w1", outcome, when=broker.time(), execution=record)
    stored = broker.get_task(Q, State.ERROR, "t", load_executions=5)
    assert stored.meta_error is None
    assert [r["exception_name"] for r in stored.executions] == [
        "builtins:ValueError",
        SERIALIZATION_ERROR,
    ]
    assert "count" in stored.executions[-1]["exception"]
    assert broker.executions_count(Q, "t") == 2
    assert broker.queue_sizes(Q)[State.SCHEDULED] == 0


@pytest.mark.parametrize(
    "kind", ["meta count: text", "meta priority: text", "meta whole: garbage", "payload: args int"]
)
def test_expired_active_task_with_bad_data_is_failed_not_crash_looping(
    tq: TaskQ, trace_dir: Path, kind: str
) -> None:
    """An active task whose worker died, with unreadable meta or payload: the
    recovery scan of every (re)started worker goes on; the task ends in error
    with a record, and listing the active and error states never raises."""
    place_task(broker_of(tq), Q, "lost", "active", CORRUPTIONS[kind])
    assert "lost" in {t.id for t in all_listed(tq)["active"]}
    good(tq, "after")
    run_worker(tq)
    run_worker(tq)  # a restarted worker
    assert ran(trace_dir) == ["after"]
    assert pending_ids(tq) == set()
    task = error_task(tq, "lost")
    assert SERIALIZATION_ERROR in [r["exception_name"] for r in task.executions]


def test_due_scheduled_task_with_bad_meta_goes_to_error(tq: TaskQ, trace_dir: Path) -> None:
    """A scheduled task whose meta is unreadable is moved to error with a record
    when it is due (its meta is not silently reset and run)."""
    place_task(broker_of(tq), Q, "s", "scheduled", CORRUPTIONS["meta priority: text"])
    logs = run_worker(tq)
    assert ran(trace_dir, "ran_anyway") == []
    assert "priority" in error_task(tq, "s").executions[-1]["exception"]
    assert warnings_naming(logs, "s")


# -- entries dropped with a warning ----------------------------------------------------


def test_stale_malformed_and_dataless_entries_are_dropped_with_a_warning(
    tq: TaskQ, trace_dir: Path
) -> None:
    """A stale duplicate queued entry, a malformed queued entry and a queued id
    whose payload is missing are each dropped with a warning naming the queue
    and the id; the healthy tasks run exactly once and nothing is left behind
    in the queue's keys."""
    broker = broker_of(tq)
    place_task(broker, Q, "dup", "queued", CORRUPTIONS["entry: stale duplicate"], tag="dup")
    place_task(broker, Q, "odd", "queued", CORRUPTIONS["entry: malformed"], tag="odd")
    place_task(broker, Q, "gone", "queued", CORRUPTIONS["payload: missing"])
    logs = run_worker(tq)
    assert sorted(ran(trace_dir)) == ["dup", "odd"]
    assert broker.queue_sizes(Q) == dict.fromkeys(State, 0)
    assert tasks_hash_ids(tq) == set()
    for task_id in ("dup", "not-a-queued-entry:odd", "gone"):
        found = warnings_naming(logs, task_id)
        assert found, (task_id, logs)
        assert all(e["queue"] == Q for e in found)


# -- inspection --------------------------------------------------------------------------


def test_listing_and_inspection_show_unreadable_tasks(redis_url: str, tq: TaskQ) -> None:
    """Task.tasks_from_queue, Task.from_id, `taskq tasks` and `taskq task` show a
    task with unreadable payload, meta or execution record as unreadable
    instead of raising, in every state."""
    broker = broker_of(tq)
    place_task(broker, Q, "qmeta", "queued", CORRUPTIONS["meta seq: text"])
    place_task(broker, Q, "qpay", "queued", CORRUPTIONS["payload: kwargs int"])
    place_task(broker, Q, "amenta", "active", CORRUPTIONS["meta priority: text"])
    place_task(broker, Q, "rec", "queued", CORRUPTIONS["record: not msgpack"])
    listed = all_listed(tq)
    by_id = {t.id: t for tasks in listed.values() for t in tasks}
    assert "seq" in (by_id["qmeta"].unreadable or "")
    assert "kwargs" in (by_id["qpay"].unreadable or "")
    assert "priority" in (by_id["amenta"].unreadable or "")
    assert by_id["rec"].unreadable is None
    assert "unreadable" in by_id["rec"].executions[0]
    for task_id, state in (("qmeta", "queued"), ("qpay", "queued"), ("amenta", "active")):
        assert Task.from_id(tq, Q, state, task_id).unreadable

    runner = CliRunner()
    result = runner.invoke(main, ["tasks", Q, "queued", "--url", redis_url])
    assert result.exit_code == 0, result.output
    assert "qmeta" in result.output
    assert "unreadable" in result.output
    result = runner.invoke(main, ["tasks", Q, "queued", "--json", "--url", redis_url])
    assert result.exit_code == 0, result.output
    shown = {t["id"]: t for t in json.loads(result.output)["tasks"]}
    assert "seq" in shown["qmeta"]["unreadable"]
    assert "kwargs" in shown["qpay"]["unreadable"]
    for task_id, state in (("qmeta", "queued"), ("amenta", "active"), ("rec", "queued")):
        result = runner.invoke(main, ["task", Q, state, task_id, "--url", redis_url])
        assert result.exit_code == 0, result.output
        assert task_id in result.output
    result = runner.invoke(main, ["task", Q, "queued", "qpay", "--json", "--url", redis_url])
    assert result.exit_code == 0, result.output
    assert "kwargs" in json.loads(result.output)["unreadable"]


# -- property: random corruption among healthy tasks ----------------------------------------

_KIND_PLACES = sorted((name, place) for name, c in CORRUPTIONS.items() for place in c.places)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    corrupted=st.lists(st.sampled_from(_KIND_PLACES), min_size=1, max_size=12),
    healthy=st.integers(min_value=0, max_value=4),
)
def test_random_corruption_never_stops_the_worker(
    redis_url: str, trace_dir: Path, corrupted: list[tuple[str, str]], healthy: int
) -> None:
    """Random kinds of corruption in random places among healthy tasks: the
    worker never dies, listing never raises, no corrupted task runs or stays
    queued or active, each ends in error with a record or is removed with a
    warning naming it, and every healthy task runs once."""
    tq = TaskQ(redis_url, config=corrupt_app.FAST)
    broker = broker_of(tq)
    broker.client.flushall()
    for name in ("good", "ran_anyway"):
        (trace_dir / name).unlink(missing_ok=True)
    try:
        placed = [
            place_task(broker, Q, f"c{i}", place, CORRUPTIONS[name], tag=f"c{i}")
            for i, (name, place) in enumerate(corrupted)
        ]
        tags = [f"g{i}" for i in range(healthy)]
        for tag in tags:
            good(tq, tag)
        all_listed(tq)
        logs = run_worker(tq)
        assert ran(trace_dir, "ran_anyway") == []
        expected = tags + [p.task_id for p in placed if p.kind.healthy]
        assert sorted(ran(trace_dir)) == sorted(expected)
        check_outcomes(tq, Q, placed, logs)
    finally:
        broker.close()


def check_outcomes(tq: TaskQ, queue: str, placed: list[Placed], logs: list[dict[str, Any]]) -> None:
    """The invariants of Decision 19 for the corrupted tasks of ``queue``."""
    listed = all_listed(tq, queue)
    assert listed["queued"] == []
    assert listed["active"] == []
    assert not {t.id for t in listed["scheduled"]} & {p.task_id for p in placed}
    errors = {t.id: t for t in listed["error"]}
    warned = {e.get("task_id") for e in logs if e.get("log_level") == "warning"}
    for p in placed:
        if p.kind.outcome == "error":
            if p.task_id in errors:
                names = [r.get("exception_name") for r in errors[p.task_id].executions]
                assert SERIALIZATION_ERROR in names, (p, names)
            else:
                assert p.task_id in warned, p
        elif p.kind.outcome == "removed":
            assert p.task_id not in errors, p
            assert p.task_id in warned, p
        elif p.kind.outcome == "stale":
            assert p.kind.entry_prefix + p.task_id in warned, p
    assert set(errors) <= {p.task_id for p in placed}


# -- at scale, with a real worker process ---------------------------------------------------


@pytest.mark.slow
def test_corrupt_data_at_scale(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a thousand corrupted tasks (each of the 125 kinds in each place it
    applies to: queued, due scheduled, expired active; four rounds of them) in
    three queues, among some 360 healthy tasks, under one `taskq worker`
    process: it never dies (it stops cleanly on SIGTERM, exit 0), no healthy
    task is lost or run twice, no corrupted task runs or stays queued, active
    or scheduled, each ends in error with a record or is removed with a
    warning naming it, and nothing is left behind for the removed ones."""
    pool = WorkerPool(redis_url, tmp_path, app="corrupt_app:tq", pythonpath=[HERE])
    with running(pool, monkeypatch):
        tq = TaskQ(redis_url, config=corrupt_app.FAST)
        broker = broker_of(tq)
        queues = ["default", "bulk", "bulk.sub"]
        kinds = sorted(_KIND_PLACES)
        placed: list[Placed] = []
        n = 0
        while len(placed) < 1100:
            for name, place in kinds:
                queue = queues[n % len(queues)]
                placed.append(
                    place_task(broker, queue, f"c{n}", place, CORRUPTIONS[name], tag=f"c{n}")
                )
                if n % 4 == 0:
                    good(tq, f"g{n}", queue=queue)
                n += 1
        assert len(placed) > 1000
        assert len({p.kind.name for p in placed}) == len(CORRUPTIONS) > 100
        tags = [f"g{i}" for i in range(n) if i % 4 == 0]
        proc = pool.start()
        expected_runs = len(tags) + sum(1 for p in placed if p.kind.healthy)

        def settled() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the worker died:\n{pool.log()[-5000:]}")
            sizes = [broker.queue_sizes(q) for q in queues]
            busy = sum(s[State.QUEUED] + s[State.ACTIVE] + s[State.SCHEDULED] for s in sizes)
            return busy == 0 and len(lines(tmp_path / "good")) >= expected_runs

        wait_for(settled, timeout=150, what="every task handled")
        assert proc.poll() is None, pool.log()[-5000:]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, pool.log()[-5000:]

        logs = [json.loads(line) for line in pool.log().splitlines() if line.startswith("{")]
        for event in logs:
            event["log_level"] = event.get("level")
        good_runs = lines(tmp_path / "good")
        corrupt_runs = lines(tmp_path / "ran_anyway")
        for queue in queues:
            check_outcomes(tq, queue, [p for p in placed if p.queue == queue], logs)
        assert corrupt_runs == []
        assert sorted(good_runs) == sorted(tags + [p.task_id for p in placed if p.kind.healthy])
        for queue in queues:
            errors = {t.id for t in Task.tasks_from_queue(tq, queue, State.ERROR)[1]}
            assert tasks_hash_ids(tq, queue) <= errors
        broker.close()
