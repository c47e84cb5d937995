"""Periodic tasks declared on this module's own TaskQ (API decision 7): a worker
started with ``-m periodic_module`` runs them although it builds its own app.
One is a plain function, one ``async def``: every executor runs both."""

from __future__ import annotations

import os
import time
from pathlib import Path

from taskq_core import TaskQ, periodic

module_tq = TaskQ()


def _stamp(name: str) -> None:
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / name, "a") as fh:
        fh.write(f"{time.time():.3f}\n")


@module_tq.task(schedule=periodic(seconds=1))
def tick() -> None:
    """Append a timestamp to ``$TASKQ_TEST_DIR/tick``."""
    _stamp("tick")


@module_tq.task(schedule=periodic(seconds=1))
async def atick() -> None:
    """Append a timestamp to ``$TASKQ_TEST_DIR/atick``."""
    _stamp("atick")
