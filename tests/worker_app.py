"""The app the process-level worker tests run (``--app worker_app:tq``), on
every broker: its ``TaskQ`` names none, so workers take ``TASKQ_URL``.

Short timeouts keep the tests fast. Tasks leave traces as lines in files under
``$TASKQ_TEST_DIR`` so the test process can see what ran, when, and where.
Tasks a scenario runs under every executor have an ``async def`` twin named
``a<name>`` (see ``Mode.task`` in ``tests/worker_procs.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from taskq_core import TaskQ, fixed

tq = TaskQ(
    config={
        "ACTIVE_TASK_UPDATE_TIMER": 0.2,
        "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
        "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.3,
        "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
        "QUEUE_RESYNC_INTERVAL": 0.5,
        "SELECT_TIMEOUT": 0.2,
        "LOCK_RETRY": 0.1,
        "DEFAULT_HARD_TIMEOUT": 20,
        "STATS_INTERVAL": 0,
        "DEFAULT_RETRY_METHOD": fixed(0.2, 3),
    }
)

#: how long a task waits for the others it is meant to run beside
TOGETHER_WAIT = 15.0


def _dir() -> Path:
    return Path(os.environ["TASKQ_TEST_DIR"])


def _trace(name: str, text: str) -> None:
    with open(_dir() / name, "a") as fh:
        fh.write(text + "\n")


def _started() -> int:
    path = _dir() / "starts"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _not_together(n: int) -> RuntimeError:
    return RuntimeError(f"only {_started()} of {n} tasks were running at once")


@tq.task
def record(name: str, value: str = "ran") -> None:
    """Append ``value`` to the trace file ``name``."""
    _trace(name, value)


@tq.task
def slow(name: str, seconds: float) -> None:
    """Say it started, sleep, say it finished."""
    _trace(name, "started")
    time.sleep(seconds)
    _trace(name, "finished")


@tq.task(retry=True)
def together(label: str, n: int, hold: float = 0.0) -> None:
    """Say it started (with its pid and its own current task id); on its first
    run, wait until ``n`` tasks have started (fail if they never do: they did
    not run at once) and hold ``hold`` seconds; say it finished."""
    _trace("starts", f"{label} {os.getpid()} {tq.current_task.id}")
    runs = tq.current_task.n_executions()
    if runs == 0:
        deadline = time.time() + TOGETHER_WAIT
        while _started() < n:
            if time.time() > deadline:
                raise _not_together(n)
            time.sleep(0.02)
        time.sleep(hold)
    _trace("finished", f"{label} {runs}")


@tq.task(retry=True)
async def atogether(label: str, n: int, hold: float = 0.0) -> None:
    """The ``async def`` twin of :func:`together`."""
    _trace("starts", f"{label} {os.getpid()} {tq.current_task.id}")
    runs = tq.current_task.n_executions()
    if runs == 0:
        deadline = time.time() + TOGETHER_WAIT
        while _started() < n:
            if time.time() > deadline:
                raise _not_together(n)
            await asyncio.sleep(0.02)
        await asyncio.sleep(hold)
    _trace("finished", f"{label} {runs}")


@tq.task
def whoami(label: str) -> None:
    """Say which process ran it."""
    _trace("pids", f"{label} {os.getpid()}")


@tq.task(hard_timeout=0.5)
def stubborn(name: str, ignore_alarm: bool) -> None:
    """Runs (in Python, so an interrupt reaches it) for 30 s, past its hard
    timeout; with ``ignore_alarm`` it ignores SIGALRM first, so only its
    worker can stop it. Says how it was stopped, if it lives to say it."""
    if ignore_alarm:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
    _trace(name, "started")
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            time.sleep(0.02)
    except BaseException as exc:
        _trace(name, f"stopped {type(exc).__name__}")
        raise


@tq.task(hard_timeout=0.5)
async def astubborn(name: str, ignore_alarm: bool) -> None:
    """The ``async def`` twin of :func:`stubborn`."""
    if ignore_alarm:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
    _trace(name, "started")
    try:
        await asyncio.sleep(30)
    except BaseException as exc:
        _trace(name, f"stopped {type(exc).__name__}")
        raise


def _span(name: str, kind: str) -> None:
    _trace(name, f"{kind} {time.time():.6f} {tq.current_task.id}")


@tq.task(lock=True, lock_key="resource")
def exclusive(name: str, resource: str, seconds: float) -> None:
    """Record the start and end of each run; runs holding one lock never overlap."""
    _span(name, "start")
    time.sleep(seconds)
    _span(name, "end")


@tq.task(lock=True, lock_key="resource")
async def aexclusive(name: str, resource: str, seconds: float) -> None:
    """The ``async def`` twin of :func:`exclusive`."""
    _span(name, "start")
    await asyncio.sleep(seconds)
    _span(name, "end")


@tq.task(unique=True)
def unique_job(name: str, label: str = "") -> None:
    """A unique task: enqueued many times, it is pending at most once."""
    _trace(name, f"ran {label}")
    time.sleep(0.2)


@tq.task(unique=True)
async def aunique_job(name: str, label: str = "") -> None:
    """The ``async def`` twin of :func:`unique_job`."""
    _trace(name, f"ran {label}")
    await asyncio.sleep(0.2)
