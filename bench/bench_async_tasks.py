"""The ``async def`` tasks of the benchmark (see :mod:`bench_tasks`).

For taskq's ``asyncio`` executor and for SAQ, whose functions are coroutines
that take SAQ's context first and keyword arguments.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench_tasks import SLEEP_SECONDS, record


async def anoop(t: float = 0.0) -> None:
    """Does nothing, as a coroutine."""
    record(t, time.time())


async def asleep20(t: float = 0.0) -> None:
    """Waits 20 ms with ``asyncio.sleep``."""
    started = time.time()
    await asyncio.sleep(SLEEP_SECONDS)
    record(t, started)


async def saq_noop(ctx: dict[str, Any], *, t: float = 0.0) -> None:
    """:func:`anoop` with SAQ's signature."""
    record(t, time.time())


async def saq_sleep20(ctx: dict[str, Any], *, t: float = 0.0) -> None:
    """:func:`asleep20` with SAQ's signature."""
    started = time.time()
    await asyncio.sleep(SLEEP_SECONDS)
    record(t, started)
