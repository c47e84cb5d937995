"""No fork in the middle of a statement or transaction.

SQLite keeps, per process, what each of its open files is locked for. A child
forked while another thread of the parent is inside a transaction inherits
that bookkeeping ("this process holds the write lock") without the thread
that would release it, and every connection it opens to the file waits for
that lock forever. So every use of a connection holds :data:`GATE` (many
threads at once), and a fork (``os.register_at_fork``) first waits until no
other thread holds it, and keeps new users out until the fork is done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GATE", "ForkGate"]


class ForkGate:
    """Shared by the users of connections, exclusive for a fork."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._busy = 0
        self._forking = False
        self._mine = threading.local()

    def _depth(self) -> int:
        depth: int = getattr(self._mine, "depth", 0)
        return depth

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Use connections meanwhile (re-entrant: a thread that holds the gate
        may enter it again even while a fork waits)."""
        depth = self._depth()
        with self._cond:
            while self._forking and depth == 0:
                self._cond.wait()
            self._busy += 1
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def before_fork(self) -> None:
        """Wait until no other thread uses a connection; hold the gate shut
        across the fork."""
        own = self._depth()
        self._cond.acquire()
        self._forking = True
        while self._busy > own:
            self._cond.wait()

    def after_fork_in_parent(self) -> None:
        self._forking = False
        self._cond.notify_all()
        self._cond.release()

    def after_fork_in_child(self) -> None:
        """The parent's other threads do not exist here: start afresh."""
        self._reset()


#: the gate of this process
GATE = ForkGate()

os.register_at_fork(
    before=GATE.before_fork,
    after_in_parent=GATE.after_fork_in_parent,
    after_in_child=GATE.after_fork_in_child,
)
