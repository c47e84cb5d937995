"""Task functions shared by every system in the benchmark (importable by workers).

Each task takes the time it was enqueued (``t``, ``time.time()`` on the
enqueuing side) and, when the worker runs with ``BENCH_RECORD`` set to a file,
appends one :data:`RECORD` to it when it ends: enqueued, started, finished.
The harness counts finished tasks by the size of that file and takes
throughput and latency from its timestamps, so a task costs every system the
same few microseconds and no Redis command.

The ``async def`` variants live in :mod:`bench_async_tasks`, so that workers
that never run a coroutine do not import :mod:`asyncio` (it shows in RSS).
"""

from __future__ import annotations

import os
import struct
import time

#: one finished task: enqueued, started, finished (``time.time()``)
RECORD = struct.Struct("<ddd")
#: how long a task of the ``sleep`` workload waits
SLEEP_SECONDS = 0.02

_PATH = os.environ.get("BENCH_RECORD")
# opened once per process; O_APPEND keeps the writes of threads and forked
# children whole and in sequence
_FD = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if _PATH else None


def record(enqueued: float, started: float) -> None:
    """Append the record of a task that started at ``started`` and ends now."""
    if _FD is not None:
        os.write(_FD, RECORD.pack(enqueued, started, time.time()))


def noop(t: float = 0.0) -> None:
    """Does nothing: the benchmark measures the queue, not the task."""
    record(t, time.time())


def sleep20(t: float = 0.0) -> None:
    """Waits 20 ms without using the CPU, as a task waiting on I/O would."""
    started = time.time()
    time.sleep(SLEEP_SECONDS)
    record(t, started)
