"""A background thread that sends reports, so that a slow or unreachable
Rollbar never holds up the worker.

The thread is a daemon (it never keeps a process alive), starts on the first
report and ends once it has been idle for a moment, so a worker that forks a
child for every task rarely forks while it runs. Pending reports are bounded:
past :data:`MAX_PENDING` new ones are dropped (and counted) rather than piling
up in memory. A forked child starts with an empty sender of its own.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

__all__ = ["MAX_PENDING", "Sender"]

#: Reports waiting to be sent, at most; more are dropped.
MAX_PENDING = 1000
#: Seconds the thread waits for more work before it ends.
IDLE_SECONDS = 1.0


class Sender:
    """Runs submitted callables one after the other in a daemon thread."""

    def __init__(
        self,
        max_pending: int = MAX_PENDING,
        idle_seconds: float = IDLE_SECONDS,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.max_pending = max_pending
        self.idle_seconds = idle_seconds
        self.on_error = on_error
        self._reset()
        ref = weakref.ref(self)

        def reset_in_child() -> None:
            sender = ref()
            if sender is not None:
                sender._reset()

        os.register_at_fork(after_in_child=reset_in_child)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._items: deque[Callable[[], object]] = deque()
        self._busy = False
        self._thread: threading.Thread | None = None
        #: reports dropped because too many were pending.
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Reports not sent yet (queued, or being sent)."""
        with self._cond:
            return len(self._items) + (1 if self._busy else 0)

    def submit(self, item: Callable[[], object]) -> bool:
        """Queue ``item`` to run in the thread; ``False`` if it was dropped
        because :attr:`max_pending` reports are waiting already."""
        with self._cond:
            if len(self._items) >= self.max_pending:
                self.dropped += 1
                return False
            self._items.append(item)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="taskq-rollbar-sender", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every queued report to be sent;
        ``True`` if none is left."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._items:
                    self._cond.wait(self.idle_seconds)
                if not self._items:
                    self._thread = None
                    self._cond.notify_all()
                    return
                item = self._items.popleft()
                self._busy = True
            try:
                item()
            except BaseException as exc:  # a failed send must not end the thread
                if self.on_error is not None:
                    try:
                        self.on_error(exc)
                    except Exception:
                        pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
