"""Periodic tasks declared on this module's own TaskQ (API decision 7): a worker
started with ``-m periodic_module`` runs them although it builds its own app."""

from __future__ import annotations

import os
import time
from pathlib import Path

from taskq_core import TaskQ, periodic

module_tq = TaskQ()


@module_tq.task(schedule=periodic(seconds=1))
def tick() -> None:
    """Append a timestamp to ``$TASKQ_TEST_DIR/tick``."""
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / "tick", "a") as fh:
        fh.write(f"{time.time():.3f}\n")
