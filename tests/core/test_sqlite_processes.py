"""The SQLite broker shared by processes: concurrent poppers never share a
task and never see ``database is locked``, a fresh file is set up once
however many open it at once, a forked child works with the broker it
inherited, and a waiter is woken by another process's enqueue."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlite_helpers import rows

from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.sqlite import SCHEMA_VERSION, SQLiteBroker
from taskq_core.states import STATES, State

HERE = Path(__file__).resolve().parent
PROC = str(HERE / "sqlite_proc.py")
Q = "many"


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, PROC, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _results(procs: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err, err
        outputs.append(out)
    return outputs


def test_four_processes_popping_never_share_a_task(tmp_path: Path) -> None:
    """Four processes enqueue, pop, heartbeat and finish on one file at once:
    every task is popped exactly once, none fails with ``database is
    locked``, and nothing is left."""
    path = tmp_path / "queue.db"
    go = tmp_path / "go"
    broker = SQLiteBroker(path)
    first = [f"p-{i}" for i in range(400)]
    broker.enqueue_many([EnqueueRequest(task_id, Q, b"x") for task_id in first])
    workers = [f"w{n}" for n in range(4)]
    procs = [_start("consume", str(path), worker, "100", str(go)) for worker in workers]
    go.touch()
    popped = [json.loads(out) for out in _results(procs)]
    every = [task_id for ids in popped for task_id in ids]
    expected = {*first, *(f"{w}-{i}" for w in workers for i in range(100))}
    assert len(every) == len(set(every)) == len(expected)
    assert set(every) == expected
    assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
    assert rows(broker, "SELECT count(*) FROM taskq_tasks") == [(0,)]
    broker.close()


def test_a_fresh_file_opened_by_many_processes_is_set_up_once(tmp_path: Path) -> None:
    """Processes that open a new file at the same moment all succeed: one of
    them creates the schema, the others find it."""
    path = tmp_path / "fresh.db"
    go = tmp_path / "go"
    procs = [_start("enqueue", str(path), Q, f"t{n}", str(go)) for n in range(4)]
    go.touch()
    assert _results(procs) == ["ok\n"] * 4
    broker = SQLiteBroker(path)
    assert rows(broker, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    assert broker.queue_sizes(Q)[State.QUEUED] == 4
    broker.close()


def test_a_waiter_is_woken_by_another_process(tmp_path: Path) -> None:
    """wait_for_activity returns the queue another process queued a task in."""
    path = tmp_path / "queue.db"
    go = tmp_path / "go"
    broker = SQLiteBroker(path)
    assert broker.wait_for_activity(0) == set()
    proc = _start("enqueue", str(path), "wake", "t1", str(go))
    go.touch()
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while "wake" not in seen and time.monotonic() < deadline:
        seen |= broker.wait_for_activity(1.0)
    assert _results([proc]) == ["ok\n"]
    assert "wake" in seen
    assert broker.wait_for_activity(0) == set()  # each announcement once
    broker.close()


def _fork_and_run(broker: SQLiteBroker, child_ids: list[str], *, call_after_fork: bool) -> int:
    """Fork; the child enqueues and pops with the broker it inherited (after
    ``after_fork()`` if asked), then exits 0, or 1 if anything went wrong."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            if call_after_fork:
                broker.after_fork()
            broker.enqueue_many([EnqueueRequest(i, Q, b"child") for i in child_ids])
            popped = broker.pop(Q, 100, "child", 600)
            finished = [broker.finish(Q, t.id, "child", "done") for t in popped]
            if set(child_ids) <= {t.id for t in popped} and all(finished):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("call_after_fork", [True, False])
def test_a_forked_child_uses_the_broker_it_inherited(tmp_path: Path, call_after_fork: bool) -> None:
    """A child forked while the parent's connection is open uses the same
    broker object (with or without ``after_fork()``: the pid change is
    noticed); the parent goes on with its own connection, and the file stays
    sound."""
    broker = SQLiteBroker(tmp_path / "queue.db")
    broker.enqueue(EnqueueRequest("parent-1", Q, b"parent"))
    assert _fork_and_run(broker, ["c1", "c2"], call_after_fork=call_after_fork) == 0
    assert broker.queue_sizes(Q)[State.ACTIVE] == 0
    assert [t.id for t in broker.pop(Q, 10, "parent", 600)] == []  # the child took all
    broker.enqueue(EnqueueRequest("parent-2", Q, b"parent"))
    assert [t.id for t in broker.pop(Q, 10, "parent", 600)] == ["parent-2"]
    assert rows(broker, "PRAGMA integrity_check") == [("ok",)]
    broker.close()


def test_fork_while_other_threads_hold_connections(tmp_path: Path) -> None:
    """Threads of the parent keep writing while children are forked: each
    child works with connections of its own, the parent's threads never see
    an error, and every task is counted once."""
    broker = SQLiteBroker(tmp_path / "queue.db")
    stop = threading.Event()
    errors: list[BaseException] = []
    made: list[int] = []

    def writer(number: int) -> None:
        count = 0
        try:
            while not stop.is_set():
                broker.enqueue(EnqueueRequest(f"thread{number}-{count}", "threads", b"t"))
                count += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        made.append(count)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        for n in range(3):
            assert _fork_and_run(broker, [f"fork{n}"], call_after_fork=True) == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert broker.queue_sizes("threads")[State.QUEUED] == sum(made)
    assert rows(broker, "PRAGMA integrity_check") == [("ok",)]
    broker.close()


def _pop_in_process(path: str, worker: str, out: multiprocessing.Queue[list[str]]) -> None:
    broker = SQLiteBroker(path)
    got: list[str] = []
    while tasks := broker.pop(Q, 2, worker, 600):
        got += [task.id for task in tasks]
    out.put(got)


def test_fork_started_processes_share_the_file_with_the_parent(tmp_path: Path) -> None:
    """multiprocessing's fork start method: children (building brokers of
    their own after the parent opened the file) and the parent pop one
    queue together without sharing a task."""
    path = tmp_path / "queue.db"
    broker = SQLiteBroker(path)
    ids = [f"t{i}" for i in range(200)]
    broker.enqueue_many([EnqueueRequest(i, Q, b"x") for i in ids])
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[list[str]] = context.Queue()
    children = [
        context.Process(target=_pop_in_process, args=(str(path), f"c{n}", out)) for n in range(2)
    ]
    for child in children:
        child.start()
    mine: list[str] = []
    while tasks := broker.pop(Q, 2, "parent", 600):
        mine += [task.id for task in tasks]
    theirs = [out.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    every = mine + [i for got in theirs for i in got]
    assert sorted(every) == sorted(ids)
    broker.close()
