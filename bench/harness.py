"""What the harnesses share: a system's agent, run in that system's Python; the
worker process's RSS; the file its tasks record in; stopping it.

``run.py`` (taskq beside the Redis peers) and ``brokers.py`` (taskq on each
broker, and Procrastinate) build on these.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_tasks import RECORD

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Mode:
    label: str  # the name in the results: taskq, taskq@base, tasktiger, dramatiq...
    executor: str  # taskq's or TaskTiger's executor; "threads"/"asyncio" for the others
    concurrency: int
    batch: int = 1

    @property
    def name(self) -> str:
        name = f"{self.label} {self.executor} -c {self.concurrency}"
        return f"{name}, batch {self.batch}" if self.batch > 1 else name

    @property
    def is_taskq(self) -> bool:
        return self.label.startswith("taskq")

    @property
    def burst(self) -> bool:
        """Whether the worker stops by itself once the queue is empty."""
        return self.is_taskq or self.label == "tasktiger"

    @property
    def probe_key(self) -> str:
        return f"{self.executor}:{self.concurrency}"


class Agent:
    """``agent.py`` for one system, run with that system's Python."""

    def __init__(self, system: str, python: str, url: str, label: str | None = None) -> None:
        self.system, self.python, self.url = system, python, url
        #: the name in the results (``taskq@base`` for a baseline build of taskq)
        self.label = label or system

    def command(self, action: str, mode: Mode | None, workload: str, **opts: Any) -> list[str]:
        args = [self.python, str(HERE / "agent.py"), self.system, action, self.url]
        args += ["--workload", workload]
        if mode is not None:
            args += ["--mode", mode.executor, "--concurrency", str(mode.concurrency)]
            args += ["--batch", str(mode.batch)]
        for key, value in opts.items():
            if value is True:
                args.append(f"--{key}")
            elif value is not None and value is not False:
                args += [f"--{key}", str(value)]
        return args

    def env(self, record: Path | None = None) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        env.pop("BENCH_RECORD", None)
        if record is not None:
            env["BENCH_RECORD"] = str(record)
        return env

    def __call__(
        self,
        action: str,
        mode: Mode | None = None,
        workload: str = "noop",
        timeout: float = 300,
        **opts: Any,
    ) -> dict[str, Any]:
        out = subprocess.run(
            self.command(action, mode, workload, **opts),
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return parse_result(out.stdout)

    def spawn(
        self, mode: Mode, workload: str, record: Path, log: Path, burst: bool
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                self.command("work", mode, workload, burst=burst),
                env=self.env(record),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def parse_result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return result
    raise RuntimeError(f"no result in the output: {stdout[-2000:]}")


# -- the worker process: RSS and stopping it --------------------------------------


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                found += [int(c) for c in children.read().split()]
    except OSError:
        pass
    return found


class Sampler:
    """Peak RSS of a worker process (``VmHWM``) and of its children together."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kib, self.children_kib = pid, 0, 0

    def sample(self) -> None:
        self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmHWM"))
        children = sum(_status_kib(c, "VmRSS") for c in _children(self.pid))
        self.children_kib = max(self.children_kib, children)


def read_records(path: Path) -> list[tuple[float, float, float]]:
    data = path.read_bytes()
    usable = len(data) - len(data) % RECORD.size
    return [RECORD.unpack_from(data, at) for at in range(0, usable, RECORD.size)]


def stop(proc: subprocess.Popen[bytes], sampler: Sampler, graceful: float = 15) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``graceful`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + graceful
    while proc.poll() is None and time.monotonic() < deadline:
        sampler.sample()
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
