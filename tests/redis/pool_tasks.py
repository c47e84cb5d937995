"""Task functions for the pool executor tests (importable by the worker)."""

from __future__ import annotations

import os
import signal
import time


def trace(text: str) -> None:
    with open(os.environ["TASKQ_TEST_DIR"] + "/pool-trace", "a") as fh:
        fh.write(text + "\n")


def whoami(label: str) -> None:
    """Record the label and the pid of the process running it."""
    trace(f"{label} {os.getpid()}")


def exit_hard(code: int) -> None:
    """Leave the child without any cleanup, as a crashing extension would."""
    os._exit(code)


def boom() -> None:
    raise ValueError("boom")


def hang() -> None:
    """Ignore SIGALRM, so only the parent's SIGKILL stops it."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    time.sleep(60)
