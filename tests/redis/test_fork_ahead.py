"""The ``fork`` executor forks the child of the next task ahead of time
(``FORK_AHEAD``): still one child per task group, no process left behind
however the worker ends, and a child that died while waiting costs nothing."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from worker_procs import WorkerPool, bound_app, lines, running, wait_for  # noqa: E402

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def workers(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_url, tmp_path, app="fork_ahead_app:tq", pythonpath=[HERE])
    with running(pool, monkeypatch) as started:
        yield started


@pytest.fixture
def app(workers: WorkerPool) -> Any:
    return bound_app("fork_ahead_app", workers.url)


def _session(sid: int) -> set[int]:
    """The living (not zombie) processes of session ``sid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found.add(int(entry.name))
    return found


def _ran(workers: WorkerPool) -> list[tuple[str, int, int]]:
    rows = [line.split() for line in lines(workers.trace_dir / "pids")]
    return [(label, int(pid), int(ppid)) for label, pid, ppid in rows]


@pytest.mark.parametrize("app_name", ["fork_ahead_app:tq", "fork_ahead_app:tq_at_task"])
@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_every_task_group_runs_in_a_child_of_its_own(
    workers: WorkerPool, app: Any, app_name: str, concurrency: str
) -> None:
    """Forked ahead or not, each task runs in a fresh child of the worker, and
    once the burst worker exits no process of its session is left."""
    for i in range(6):
        app.tq.delay(app.whoami, args=[f"t{i}"])
    proc = workers.start("--burst", "--executor", "fork", "-c", concurrency, app=app_name)
    assert proc.wait(timeout=60) == 0, workers.log()
    ran = _ran(workers)
    assert sorted(label for label, _, _ in ran) == [f"t{i}" for i in range(6)]
    assert len({pid for _, pid, _ in ran}) == 6
    assert {ppid for _, _, ppid in ran} == {proc.pid}
    assert _session(proc.pid) == set()
    assert app.tq.get_queue_stats() == {}


def _idle_with_standby(workers: WorkerPool, app: Any) -> tuple[Any, int]:
    """A worker that ran one task and waits idle; the child it forked ahead."""
    proc = workers.start("--executor", "fork")
    workers.wait_ready()
    app.tq.delay(app.whoami, args=["first"])
    wait_for(lambda: _ran(workers), what="the first task")
    (_, first_child, _) = _ran(workers)[0]
    standby = wait_for(
        lambda: _session(proc.pid) - {proc.pid, first_child}, what="a child forked ahead"
    )
    assert len(standby) == 1
    return proc, standby.pop()


def test_a_child_waiting_for_its_task_ends_with_the_worker(workers: WorkerPool, app: Any) -> None:
    """SIGTERM to an idle worker: it exits 0 and its waiting child with it;
    kill -9 of the worker: the waiting child sees its pipe close and exits."""
    proc, standby = _idle_with_standby(workers, app)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, workers.log()
    wait_for(lambda: not _session(proc.pid), what="no process left after SIGTERM")

    proc, standby = _idle_with_standby(workers, app)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: standby not in _session(proc.pid), what="the waiting child to exit")


def test_a_child_that_died_waiting_costs_no_task(workers: WorkerPool, app: Any) -> None:
    """The child forked ahead is killed before a task comes: the next task runs
    in a child forked then, and the worker goes on. (A child killed in the
    instant the worker hands it a task costs that task one execution, like a
    child killed while running it.)"""
    proc, standby = _idle_with_standby(workers, app)
    os.kill(standby, signal.SIGKILL)
    # gone (a zombie until the worker reaps it): its end of the pipe is closed
    wait_for(lambda: standby not in _session(proc.pid), what="the waiting child to die")
    app.tq.delay(app.whoami, args=["second"])
    try:
        wait_for(lambda: len(_ran(workers)) == 2, what="the second task")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{workers.log()}") from None
    label, pid, ppid = _ran(workers)[1]
    assert (label, ppid) == ("second", proc.pid)
    assert pid != standby
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, workers.log()
    assert app.tq.get_queue_stats() == {}
