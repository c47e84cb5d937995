"""Broker outages: retrying a step with back-off until the broker is back
(Decision 10)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskq_core.exceptions import (
    BrokerConnectionError,
)

if TYPE_CHECKING:
    pass

from taskq_core.worker._state import _BACKOFF_MAX, WorkerState

__all__ = ["Outages"]


class Outages(WorkerState):
    """Steps retried through broker outages."""

    def _retrying(
        self, func: Callable[[], Any], give_up: Callable[[], bool]
    ) -> tuple[bool, Any, bool]:
        """Call ``func``; while the broker is unreachable, log it once and retry
        with exponential back-off (0.5 s doubling to 30 s) until ``give_up()``.
        Returns (succeeded, result, there was an outage)."""
        delay = 0.5
        failed = False
        while True:
            try:
                result = func()
            except (BrokerConnectionError, ConnectionError) as exc:
                if not failed:
                    self.log.error("broker unavailable", error=str(exc))
                failed = True
                if give_up():
                    return False, None, True
                self._pause(delay, give_up)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            if failed:
                self.log.info("broker available again")
            return True, result, failed

    def _with_backoff(self, func: Callable[[], Any]) -> Any:
        """Run a step of the loop through an outage (until stopped); returns
        ``None`` after an outage, so the loop starts its pass again."""
        _, result, outage = self._retrying(func, lambda: self.stop_requested)
        if outage:
            self._last_resync = 0.0
            return None
        return result

    def _store(self, func: Callable[[], Any]) -> Any:
        """Store an outcome through an outage, even when a stop was requested (a
        finished task's outcome is worth waiting for). Gives up only on an
        insistent stop: the task is then recovered as lost after
        ``ACTIVE_TASK_UPDATE_TIMEOUT``."""
        stored, result, _ = self._retrying(func, lambda: self.force_stop)
        if not stored:
            self.log.error("outcome not stored; the task will be recovered as lost")
        return result

    def _pause(self, seconds: float, give_up: Callable[[], bool]) -> None:
        end = time.time() + seconds
        while not give_up() and (remaining := end - time.time()) > 0:
            time.sleep(min(0.1, remaining))

    def _sleep(self, seconds: float) -> None:
        self._pause(seconds, lambda: self.stop_requested)
