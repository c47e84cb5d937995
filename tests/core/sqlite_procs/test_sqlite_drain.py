"""10,000 tasks drained from one SQLite file by four `taskq worker`
processes with ``-c 4`` each (the pool, fork, threads and asyncio
executors), the pool one killed with SIGKILL midway: no ``database is
locked``, nothing lost, and nothing run twice but what the killed worker was
running."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from taskq_core import Task
from worker_procs import WorkerPool, bound_app, lines, release, running, wait_for
from worker_scenarios import HERE as TESTS

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow

TOTAL = 10_000
#: the executors of the four workers; the first is killed
EXECUTORS = ("pool", "fork", "threads", "asyncio")
SLOTS = 4
#: how long each task runs, so that the killed worker is running some
HOLD = 0.02


def _runs(path: Path) -> list[tuple[str, int, int]]:
    """``(task id, pid, parent pid)`` of every line of a trace of drain_app."""
    found = []
    for line in lines(path):
        task_id, pid, ppid = line.split()
        found.append((task_id, int(pid), int(ppid)))
    return found


def _by(worker: int, rows: list[tuple[str, int, int]]) -> list[str]:
    """The ids of the rows written by ``worker`` or by a child of it."""
    return [task_id for task_id, pid, ppid in rows if worker in (pid, ppid)]


def _running(worker: int, trace_dir: Path) -> set[str]:
    """The tasks ``worker`` started and did not say it ended."""
    started = Counter(_by(worker, _runs(trace_dir / "runs")))
    started.subtract(_by(worker, _runs(trace_dir / "done")))
    return {task_id for task_id, count in started.items() if count > 0}


def _events(log: str, name: str) -> list[dict[str, object]]:
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def test_four_workers_drain_10000_tasks_and_a_kill_9_runs_only_its_tasks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four workers with ``-c 4`` on one file drain 10,000 tasks; each
    execution of a task appends its id to one file (``O_APPEND``). Once half
    of them have run, the pool worker and its children are killed with
    SIGKILL. Every task runs; the only tasks that run twice are ones the
    killed worker was running (at most its four slots), each queued again by
    another worker once its heartbeat expired (``queueing expired task``);
    none fails, none is left behind, and no worker logs ``database is
    locked``."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    pool = WorkerPool(url, tmp_path, app="drain_app:tq", pythonpath=[TESTS, HERE])
    with running(pool, monkeypatch):
        app = bound_app("drain_app", url)
        try:
            started = time.monotonic()
            app.tq.delay_many([Task(app.tq, app.step, kwargs={"hold": HOLD}) for _ in range(TOTAL)])
            enqueued = time.monotonic() - started
            procs = [pool.start("--executor", e, "-c", str(SLOTS)) for e in EXECUTORS]
            victim = procs[0]
            wait_for(
                lambda: len(lines(tmp_path / "runs")) >= TOTAL // 2,
                timeout=600,
                what="half the tasks run",
            )
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its children
            victim.wait(timeout=10)
            killed_at = time.monotonic() - started
            in_flight = _running(victim.pid, tmp_path)
            wait_for(
                lambda: len({row[0] for row in _runs(tmp_path / "runs")}) == TOTAL,
                timeout=600,
                what="every task run",
            )
            wait_for(lambda: app.tq.get_queue_stats() == {}, timeout=60, what="an empty queue")
            drained = time.monotonic() - started
            for index, proc in enumerate(procs[1:], start=1):
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0, pool.log(index)
        finally:
            release(app.tq)
    runs = _runs(tmp_path / "runs")
    counts = Counter(task_id for task_id, _pid, _ppid in runs)
    assert len(counts) == TOTAL
    assert set(counts.values()) <= {1, 2}
    twice = {task_id for task_id, count in counts.items() if count > 1}
    survivors = "".join(pool.log(index) for index in range(1, len(EXECUTORS)))
    requeued = {str(e["task_id"]) for e in _events(survivors, "queueing expired task")}
    assert requeued  # the killed worker was running tasks
    assert not _events(survivors, "failing expired task")
    # each task run twice had a run in the killed worker, and was queued
    # again once that run's heartbeat expired; the tasks it had started
    # and not ended (it may also have ended some without storing their
    # outcome) are among them
    by_victim = set(_by(victim.pid, runs))
    others = {t: [r for r in runs if r[0] == t] for t in twice - by_victim}
    assert not others, (victim.pid, [p.pid for p in procs], others)
    assert twice <= requeued, (twice, requeued)
    assert in_flight <= twice, (in_flight, twice)
    assert len(twice) <= SLOTS
    for index in range(len(EXECUTORS)):
        assert "database is locked" not in pool.log(index), pool.log(index)
    print(
        f"\n{TOTAL} tasks: enqueued in {enqueued:.1f} s, worker killed at {killed_at:.1f} s, "
        f"drained in {drained:.1f} s; {len(twice)} ran twice, {len(requeued)} requeued"
    )
