"""The worker: finds queued work, runs it, records the outcome.

One worker process runs up to ``concurrency`` task groups at once, with any
executor (``docs/workers.md``, "Many tasks at once"). The parts, each in its own module and
each importing only the ones before it: ``_state`` (settings), ``outages``
(back-off), ``finishing`` (outcomes), ``periodic``, ``maintenance`` (resync,
scheduled moves, crash recovery), ``processing`` (pop, group, run) and
``loop`` (the :class:`Worker`).
"""

from __future__ import annotations

from taskq_core.config import DEFAULT_EXECUTOR
from taskq_core.outcome import Decision, decide_retry
from taskq_core.worker.loop import Worker

__all__ = ["DEFAULT_EXECUTOR", "Decision", "Worker", "decide_retry"]
