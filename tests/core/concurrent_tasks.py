"""Task functions for the concurrency tests (importable by path)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from taskq_core import TaskQ

#: the app whose current_task the functions read (set by the tests)
APP: dict[str, TaskQ] = {}
#: what the functions saw: (label, current task id, active at once)
seen: list[tuple[str, str, int]] = []
_lock = threading.Lock()
_active = [0, 0]  # now, highest
barrier: list[threading.Barrier] = []


def reset(parties: int) -> None:
    seen.clear()
    _active[:] = [0, 0]
    barrier[:] = [threading.Barrier(parties)]


def highest() -> int:
    return _active[1]


def _enter() -> int:
    with _lock:
        _active[0] += 1
        _active[1] = max(_active)
        return _active[0]


def _leave() -> None:
    with _lock:
        _active[0] -= 1


def meet(label: str) -> None:
    """Wait until all parties of the barrier run at once; record what it saw."""
    now = _enter()
    try:
        barrier[0].wait(timeout=10)
        seen.append((label, APP["tq"].current_task.id, now))
        barrier[0].wait(timeout=10)
    finally:
        _leave()


def sleep_for(seconds: float) -> None:
    time.sleep(seconds)


def spin_for(seconds: float) -> None:
    """Busy in Python code (so an interrupt reaches it) for ``seconds``."""
    end = time.time() + seconds
    while time.time() < end:
        sum(range(100))


async def ameet(label: str, parties: int) -> None:
    """An async task that waits until ``parties`` of its kind run at once."""
    now = _enter()
    try:
        deadline = time.time() + 10
        while _active[1] < parties and time.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        seen.append((label, APP["tq"].current_task.id, now))
    finally:
        _leave()


async def asleep_for(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


async def asleep_noting_cancel(seconds: float) -> None:
    """Sleep on the loop; if cancelled, note in :data:`seen` whether that was
    during the sleep (``cancelled while waiting``) or only after it."""
    end = time.time() + seconds
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        when = "while waiting" if time.time() < end else "after the wait"
        seen.append((f"cancelled {when}", APP["tq"].current_task.id, 1))
        raise


async def araise_timeout() -> None:
    """Fails with a ``TimeoutError`` of its own (not a hard timeout)."""
    raise TimeoutError("the service did not answer")


async def arecord(label: str) -> None:
    await asyncio.sleep(0)
    seen.append((label, APP["tq"].current_task.id, 1))


def record_value(*args: Any) -> None:
    seen.append((str(args), APP["tq"].current_task.id, 1))


def fail(label: str) -> None:
    raise ValueError(label)
