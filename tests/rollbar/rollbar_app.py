"""The app and tasks of the Rollbar tests (``--app rollbar_app:tq`` for real workers).

The plugin's settings come from the ``TASKQ_TEST_ROLLBAR`` environment variable
(JSON), the token and endpoint from ``ROLLBAR_ACCESS_TOKEN`` and
``ROLLBAR_ENDPOINT``. Short timeouts keep the tests fast.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from taskq_core import TaskQ
from taskq_core.exceptions import RetryException
from taskq_core.retry import fixed

FAST_CONFIG: dict[str, Any] = {
    "ACTIVE_TASK_UPDATE_TIMER": 0.2,
    "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
    "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.3,
    "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
    "QUEUE_RESYNC_INTERVAL": 0.5,
    "SELECT_TIMEOUT": 0.2,
    "LOCK_RETRY": 0.1,
    "DEFAULT_HARD_TIMEOUT": 20,
    "STATS_INTERVAL": 0,
}

tq = TaskQ(
    config={
        **FAST_CONFIG,
        "PLUGIN_CONFIG": {"rollbar": json.loads(os.environ.get("TASKQ_TEST_ROLLBAR") or "{}")},
    }
)


class PaymentDeclined(Exception):
    """What the failing tasks raise."""


def _trace(name: str, text: str) -> None:
    directory = os.environ.get("TASKQ_TEST_DIR")
    if directory:
        with open(Path(directory) / name, "a") as fh:
            fh.write(text + "\n")


@tq.task
def record(name: str, value: str = "ran") -> None:
    """Append ``value`` to the trace file ``name``."""
    _trace(name, value)


@tq.task
def stamp(name: str) -> None:
    """Append the current time to the trace file ``name``."""
    _trace(name, repr(time.time()))


@tq.task
def charge(customer: str, card: str = "4111 1111 1111 1111") -> None:
    """Always fails (arguments that look like personal data)."""
    _trace("charge", customer)
    raise PaymentDeclined(f"card declined for {customer}")


@tq.task(retry_method=fixed(0, 2))
def flaky(name: str) -> None:
    """Fails three times: twice retried, then for good."""
    _trace(name, "run")
    raise PaymentDeclined("still down")


@tq.task
def give_up_quietly() -> None:
    """Asks for a retry that is not allowed, without logging an error: dropped."""
    raise RetryException(method=fixed(0, 0), log_error=False)


@tq.task(hard_timeout=0.5)
def sleep_past_timeout(seconds: float = 10.0) -> None:
    """Sleeps past its hard timeout."""
    _trace("sleepy", "started")
    time.sleep(seconds)


@tq.task(hard_timeout=0.5)
def hang_ignoring_alarm() -> None:
    """Ignores SIGALRM, so only the parent's SIGKILL can stop it (a dead child)."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    _trace("hang", "started")
    time.sleep(60)


@tq.task
def slow(name: str, seconds: float) -> None:
    """Says it started, then sleeps (its worker is killed meanwhile)."""
    _trace(name, "started")
    time.sleep(seconds)
