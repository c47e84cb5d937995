"""Run `taskq worker` as real processes in tests, and clean up after them.

Shared by the process-level tests of every distribution: each worker gets its
own log file in a trace directory, runs in its own session (so a test can
signal the whole process group, as supervisors do) and is killed at cleanup if
a test left it running. :data:`MODES` are the executor and concurrency pairs
the process-level suites run every scenario with.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "EACH_EXECUTOR",
    "EXECUTORS",
    "MODES",
    "Mode",
    "N",
    "WorkerPool",
    "bound_app",
    "lines",
    "rebind",
    "release",
    "running",
    "wait_for",
]

#: the executors of taskq-core, by their ``--executor`` name
EXECUTORS = ("fork", "pool", "threads", "sync", "asyncio")
#: how many task groups a worker runs at once in the ``-c N`` runs of the suites
N = 3


@dataclass(frozen=True)
class Mode:
    """An executor and a concurrency to start `taskq worker` with."""

    executor: str
    concurrency: int = 1

    def __str__(self) -> str:
        return f"{self.executor}-c{self.concurrency}"

    @property
    def args(self) -> tuple[str, ...]:
        """The worker's command-line options for this mode."""
        return ("--executor", self.executor, "-c", str(self.concurrency))

    @property
    def forks(self) -> bool:
        """Tasks run in child processes (else in the worker's own process)."""
        return self.executor in ("fork", "pool")

    def task(self, app: Any, name: str, index: int = 0) -> Any:
        """The task function ``name`` of ``app``, or its ``async def`` twin
        ``a<name>``, for the ``index``-th task of a scenario: the executor's
        own kind first (async for ``asyncio``, sync for the others), then the
        other kind, alternating, so at ``-c N`` every executor runs both."""
        use_async = (self.executor == "asyncio") == (index % 2 == 0)
        return getattr(app, f"a{name}" if use_async else name)


#: every executor one task at a time and ``N`` at once; ``sync -c N`` is left
#: out: it is the ``threads`` executor (docs/workers.md), run as ``threads-c3``
MODES = [
    Mode(executor, concurrency)
    for executor in EXECUTORS
    for concurrency in (1, N)
    if not (executor == "sync" and concurrency > 1)
]
#: every executor once, at its widest (``-c N``; ``sync`` at ``-c 1``): for
#: scenarios where the number of slots changes nothing
EACH_EXECUTOR = [Mode(executor, 1 if executor == "sync" else N) for executor in EXECUTORS]


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


def lines(path: Path) -> list[str]:
    """The lines of a trace file (none if it does not exist yet)."""
    return path.read_text().splitlines() if path.exists() else []


class WorkerPool:
    """Starts `taskq worker` processes for one broker URL."""

    def __init__(
        self,
        url: str,
        trace_dir: Path,
        *,
        app: str | None = None,
        pythonpath: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.trace_dir = trace_dir
        self.app = app
        self.pythonpath = [str(p) for p in pythonpath]
        self.env = dict(env or {})
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, *args: str, app: str | None = "", env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``taskq worker ARGS`` (JSON logs) with the pool's app, or
        ``app`` (``None``: no ``--app``), and extra environment ``env``."""
        index = len(self.procs)
        app = self.app if app == "" else app
        path = os.pathsep.join([*self.pythonpath, os.environ.get("PYTHONPATH", "")])
        full_env = {
            **os.environ,
            "TASKQ_URL": self.url,
            "TASKQ_TEST_DIR": str(self.trace_dir),
            "PYTHONPATH": path,
            **self.env,
            **(env or {}),
        }
        cmd = [sys.executable, "-m", "taskq_core.cli", "worker", "--log-format", "json"]
        cmd += [*(["--app", app] if app else []), *args]
        with open(self.trace_dir / f"worker{index}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def log(self, index: int = 0) -> str:
        """Everything worker ``index`` logged so far."""
        return (self.trace_dir / f"worker{index}.log").read_text(errors="replace")

    def wait_ready(self, index: int = 0) -> None:
        wait_for(lambda: '"ready"' in self.log(index), what=f"worker {index} ready")

    def burst(self, *args: str, timeout: float = 60, **options: Any) -> float:
        """Run a ``--burst`` worker to its end (exit 0); return how long it took."""
        started = time.monotonic()
        proc = self.start("--burst", *args, **options)
        assert proc.wait(timeout=timeout) == 0, self.log(len(self.procs) - 1)
        return time.monotonic() - started

    def cleanup(self) -> None:
        """Kill whatever a test left running (the whole process group)."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)


@contextmanager
def running(pool: WorkerPool, monkeypatch: Any) -> Iterator[WorkerPool]:
    """Yield ``pool`` with this process pointed at the same broker and trace
    directory (to enqueue and to read traces); kill what is left at the end."""
    monkeypatch.setenv("TASKQ_URL", pool.url)
    monkeypatch.setenv("TASKQ_TEST_DIR", str(pool.trace_dir))
    try:
        yield pool
    finally:
        pool.cleanup()


def rebind(tq: Any, url: str) -> None:
    """Point a test module's ``TaskQ`` (connected lazily) at this session's server."""
    tq._broker = None
    tq._broker_spec = url


def release(tq: Any) -> None:
    """Close the broker a test module's ``TaskQ`` opened in this process (its
    connections; on SQLite its wake-up socket too), if it opened one."""
    if tq._broker is not None:
        tq._broker.close()
        tq._broker = None


def bound_app(module_name: str, url: str) -> Any:
    """Import a test app module (its ``tq`` connects lazily) and point its
    ``TaskQ`` at this session's server; returns the module."""
    module = importlib.import_module(module_name)
    rebind(module.tq, url)
    return module
